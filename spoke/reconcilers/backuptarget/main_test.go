package backuptarget_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp is the package's control plane, with kube-controller-manager so that
// owned ServiceAccounts are garbage-collected.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "backuptarget", WithKCM: true, CRDs: []string{"charts/lifeboat-spoke/crds"}, Setup: func(ctx context.Context, c *fleet.ControlPlane) error {
		cp = c
		return cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: backupv1alpha1.TargetServiceAccountNamespace}})
	}}.RunTests(m))
}
