package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spokecrds "github.com/lifeboat-dev/lifeboat/spoke/crds"
)

// fieldOwner is the server-side apply field manager of everything the fleet creates.
const fieldOwner = client.FieldOwner("lifeboat-fleet")

// InstallCRDs applies every CRD in files (YAML, several documents each allowed) and
// waits until each is established.
func InstallCRDs(ctx context.Context, c client.Client, files ...string) error {
	crds, err := readCRDFiles(files)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		if err := c.Patch(ctx, crd, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.Name, err)
		}
	}
	return WaitCRDsEstablished(ctx, c, crdNames(crds)...)
}

// readCRDFiles reads every CRD in files.
func readCRDFiles(files []string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var all []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		crds, err := readCRDs(f)
		if err != nil {
			return nil, err
		}
		all = append(all, crds...)
	}
	return all, nil
}

func crdNames(crds []*apiextensionsv1.CustomResourceDefinition) []string {
	names := make([]string, len(crds))
	for i, crd := range crds {
		names[i] = crd.Name
	}
	return names
}

// WaitCRDsEstablished waits until every named CRD is established.
func WaitCRDsEstablished(ctx context.Context, c client.Client, names ...string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, types.NamespacedName{Name: n}, crd); err != nil {
				return false, nil
			}
			if !spokecrds.Established(crd) {
				return false, nil
			}
		}
		return true, nil
	})
}

func readCRDs(file string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		if crd.Name != "" {
			out = append(out, crd)
		}
	}
}

// CRDFiles lists the *.yaml files in dir.
func CRDFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no CRDs in %s", dir)
	}
	return files, err
}

var (
	moduleDirs   = map[string]string{}
	moduleDirsMu sync.Mutex
)

// ModuleDir returns the directory of a module this repository depends on, for
// the CRD files it ships (open-cluster-management.io/api).
func ModuleDir(module string) (string, error) {
	moduleDirsMu.Lock()
	defer moduleDirsMu.Unlock()
	if d, ok := moduleDirs[module]; ok {
		return d, nil
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %w", module, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", fmt.Errorf("module %s is not downloaded: run 'go mod download'", module)
	}
	moduleDirs[module] = d
	return d, nil
}

// RepoRoot is the root of this repository (the directory holding go.mod),
// found from the working directory upwards.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module github.com/lifeboat-dev/lifeboat\n")) {
			return d
		}
	}
	return dir
}

// The charts' CRD directories, relative to the repository root.
const (
	hubCRDs   = "charts/lifeboat-hub/crds"
	spokeCRDs = "charts/lifeboat-spoke/crds"
)

// installLifeboatCRDs installs the CRDs of one of Lifeboat's charts (a path
// relative to the repository root).
func installLifeboatCRDs(ctx context.Context, cp *ControlPlane, chartCRDs string) error {
	files, err := CRDFiles(filepath.Join(RepoRoot(), chartCRDs))
	if err != nil {
		return err
	}
	return InstallCRDs(ctx, cp.Client, files...)
}
