package volumes

import (
	"context"
	"os"
	"testing"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp is the package's control plane (etcd and kube-apiserver), where the
// mover pods are created.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "volumes", CRDs: []string{"charts/lifeboat-spoke/crds"}, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}
