package applicationbackup_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp is the package's control plane (etcd and kube-apiserver).
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	if os.Getenv("LIFEBOAT_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	}
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "lifeboat-applicationbackup-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cp, err = fleet.StartControlPlane(ctx, "applicationbackup", dir, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cp.Stop()
		files, err := fleet.CRDFiles(filepath.Join(fleet.RepoRoot(), "charts/lifeboat-spoke/crds"))
		if err == nil {
			err = fleet.InstallCRDs(ctx, cp.Client, files...)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}
