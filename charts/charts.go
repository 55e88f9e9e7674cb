// Package charts holds Lifeboat's Helm charts, embedded, and renders them with
// the Helm SDK: the hub sends the spoke chart, rendered, to every cluster in
// its agent ManifestWork.
package charts

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Names of the charts.
const (
	Hub   = "lifeboat-hub"
	Spoke = "lifeboat-spoke"
)

//go:embed all:lifeboat-hub all:lifeboat-spoke
var files embed.FS

// FS is the embedded charts, each under its name (e.g. lifeboat-spoke/Chart.yaml):
// the hub's add-on manager renders the spoke chart from it.
func FS() embed.FS { return files }

// Load loads chart name from the files embedded in the binary.
func Load(name string) (*chart.Chart, error) {
	var chartFiles []*loader.BufferedFile
	err := fs.WalkDir(files, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		chartFiles = append(chartFiles, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	ch, err := loader.LoadFiles(chartFiles)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	return ch, nil
}

// Render renders chart name as `helm install --namespace namespace` applies
// it, with values over the chart's values.yaml and the release named after the
// chart: the CRDs of crds/ first, in file name order, then the templates'
// objects in Helm's install order (Namespace, ServiceAccount, RBAC, Service,
// Deployment...). Hooks and NOTES.txt are left out; Lifeboat's charts have no
// hooks, so a hook is an error.
func Render(name string, values map[string]any, namespace string) ([]*unstructured.Unstructured, error) {
	ch, err := Load(name)
	if err != nil {
		return nil, err
	}
	release := chartutil.ReleaseOptions{Name: name, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(ch, values, release, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	rendered, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	for file := range rendered {
		if strings.HasSuffix(file, "NOTES.txt") {
			delete(rendered, file)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(rendered, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("chart %s: %s holds a hook, which Lifeboat cannot deliver", name, hooks[0].Path)
	}

	var out []*unstructured.Unstructured
	crds := ch.CRDObjects()
	sort.Slice(crds, func(i, j int) bool { return crds[i].Name < crds[j].Name })
	for _, crd := range crds {
		objs, err := decode(string(crd.File.Data))
		if err != nil {
			return nil, fmt.Errorf("chart %s: %s: %w", name, crd.Name, err)
		}
		out = append(out, objs...)
	}
	for _, m := range manifests {
		objs, err := decode(m.Content)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %s: %w", name, m.Name, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// decode is every object of a YAML stream; documents that hold nothing (only
// comments, or a template that rendered empty) are skipped.
func decode(stream string) ([]*unstructured.Unstructured, error) {
	docs := releaseutil.SplitManifests(stream)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var out []*unstructured.Unstructured
	for _, k := range keys {
		j, err := yaml.YAMLToJSON([]byte(docs[k]))
		if err != nil {
			return nil, err
		}
		if bytes.Equal(j, []byte("null")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// SpokeCRDs are the spoke's CustomResourceDefinitions (YAML, one per file), in
// file name order.
func SpokeCRDs() ([][]byte, error) {
	names, err := fs.Glob(files, path.Join(Spoke, "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(names))
	for _, f := range names {
		b, err := files.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// SpokeRBAC is the spoke manager's RBAC as controller-gen generates it: a
// ClusterRole and, for namespaced grants, Roles (YAML documents).
func SpokeRBAC() ([]byte, error) {
	return files.ReadFile(path.Join(Spoke, "templates", "role.yaml"))
}
