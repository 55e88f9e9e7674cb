// Command crdtrim drops the descriptions below a field of a generated CRD.
// A PreBackupPod embeds the whole PodSpec, whose descriptions (kubectl
// explain pod.spec has them) would make its CRD four times larger than all
// the other spoke CRDs together, too large for the add-on's ManifestWork.
//
//	crdtrim FILE FIELD.PATH
package main

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: crdtrim FILE FIELD.PATH")
		os.Exit(2)
	}
	if err := trim(os.Args[1], strings.Split(os.Args[2], ".")); err != nil {
		fmt.Fprintln(os.Stderr, "crdtrim:", err)
		os.Exit(1)
	}
}

// trim drops, in every version of the CRD in file, the descriptions of
// the fields below path (the field's own stays).
func trim(file string, path []string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return err
	}
	spec, _ := crd["spec"].(map[string]any)
	versions, _ := spec["versions"].([]any)
	for _, v := range versions {
		s, _ := v.(map[string]any)["schema"].(map[string]any)
		node, _ := s["openAPIV3Schema"].(map[string]any)
		for _, name := range path {
			props, _ := node["properties"].(map[string]any)
			if node, _ = props[name].(map[string]any); node == nil {
				return fmt.Errorf("%s has no field %s", file, strings.Join(path, "."))
			}
		}
		eachChild(node, dropDescriptions)
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte("---\n"), out...), 0o644)
}

// dropDescriptions removes the description of a schema and of every schema below it.
func dropDescriptions(schema map[string]any) {
	delete(schema, "description")
	eachChild(schema, dropDescriptions)
}

// eachChild calls fn with each schema directly below schema: its
// properties, items and additionalProperties.
func eachChild(schema map[string]any, fn func(map[string]any)) {
	props, _ := schema["properties"].(map[string]any)
	for _, p := range props {
		if m, ok := p.(map[string]any); ok {
			fn(m)
		}
	}
	for _, key := range []string{"items", "additionalProperties"} {
		if m, ok := schema[key].(map[string]any); ok {
			fn(m)
		}
	}
}
