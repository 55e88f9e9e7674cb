package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestControlPlane describes the control plane a package's tests share.
type TestControlPlane struct {
	// Name names the control plane (and its temporary directory).
	Name string
	// WithKCM also runs kube-controller-manager: namespaces finish deleting,
	// Deployments make ReplicaSets, claims bind to volumes.
	WithKCM bool
	// CRDs are chart CRD folders to install, relative to the repository root,
	// e.g. "charts/lifeboat-spoke/crds".
	CRDs []string
	// Setup runs once the control plane is up, e.g. to keep it in a package variable.
	Setup func(ctx context.Context, cp *ControlPlane) error
}

// RunTests starts the control plane, runs the package's tests, stops it and
// returns the exit code for os.Exit. LIFEBOAT_KEEP_TEST_DIR=1 keeps its files
// and logs.
func (t TestControlPlane) RunTests(m *testing.M) int {
	code, err := t.run(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s test control plane: %v\n", t.Name, err)
		return 1
	}
	return code
}

func (t TestControlPlane) run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "lifeboat-"+t.Name+"-")
	if err != nil {
		return 1, err
	}
	if os.Getenv("LIFEBOAT_KEEP_TEST_DIR") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "control plane files and logs in", dir)
	}
	cp, err := StartControlPlane(ctx, t.Name, dir, t.WithKCM)
	if err != nil {
		return 1, err
	}
	defer cp.Stop()
	for _, chart := range t.CRDs {
		files, err := CRDFiles(filepath.Join(RepoRoot(), chart))
		if err != nil {
			return 1, err
		}
		if err := InstallCRDs(ctx, cp.Client, files...); err != nil {
			return 1, err
		}
	}
	if t.Setup != nil {
		if err := t.Setup(ctx, cp); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}
