package backup_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "lifeboat-backup-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if os.Getenv("LIFEBOAT_KEEP_TEST_DIR") == "" {
			defer os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "control plane files and logs in", dir)
		}
		cp, err = fleet.StartControlPlane(ctx, "backup", dir, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cp.Stop()
		if err := empowerControllerManager(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
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

// empowerControllerManager lets the fleet's kube-controller-manager do its
// work: it runs every controller as the user system:kube-controller-manager
// (--use-service-account-credentials=false), whose bootstrap ClusterRole
// covers almost none of them (binding volumes, making ReplicaSets, controller
// revisions, endpoint slices, root CA config maps are all forbidden).
func empowerControllerManager(ctx context.Context) error {
	return cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-test-kube-controller-manager"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "system:kube-controller-manager"}},
	})
}
