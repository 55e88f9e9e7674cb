// Package charts holds the chart files the managers need at run time: the hub
// sends the spoke's CRDs and RBAC to every cluster in its agent ManifestWork.
package charts

import (
	"embed"
	"io/fs"
	"path"
)

//go:embed lifeboat-spoke/crds/*.yaml lifeboat-spoke/templates/role.yaml
var spoke embed.FS

// SpokeCRDs are the spoke's CustomResourceDefinitions (YAML, one per file), in
// file name order.
func SpokeCRDs() ([][]byte, error) {
	files, err := fs.Glob(spoke, "lifeboat-spoke/crds/*.yaml")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := spoke.ReadFile(f)
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
	return spoke.ReadFile(path.Join("lifeboat-spoke", "templates", "role.yaml"))
}
