package applicationbackup_test

import (
	"context"
	"io"
	"os"
	"testing"

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
	os.Exit(fleet.TestControlPlane{Name: "applicationbackup", CRDs: []string{"charts/lifeboat-spoke/crds"}, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}
