package backup_test

import (
	"context"
	"io"
	"os"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp is the package's control plane: etcd, kube-apiserver and
// kube-controller-manager (which binds volumes, makes ReplicaSets and pods,
// service accounts and endpoints, as in a real cluster).
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard))) // the test client's warnings
	os.Exit(fleet.TestControlPlane{Name: "backup", WithKCM: true, CRDs: []string{"charts/lifeboat-spoke/crds"}, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}
