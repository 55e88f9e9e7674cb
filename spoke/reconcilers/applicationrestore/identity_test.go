package applicationrestore

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A restore writes as the restore identity, with the rights the chart's
// restore ClusterRole gives it, not with the spoke's own.
func TestRestoreWritesAsTheRestoreIdentity(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "identity", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("identity-app"), cm("identity-app", "a", nil))
	g.Expect(cp.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: targets.SystemNamespace, Name: "restorer"}})).To(Succeed())
	tokens, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	r := newReconciler()
	r.Identity = &restore.Identity{Tokens: tokens, Namespace: targets.SystemNamespace, Name: "restorer"}

	unbound := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "unbound", "identity", "b1"))
	g.Expect(unbound.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), message(unbound))
	g.Expect(condition(unbound, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonNothingRestored))
	g.Expect(message(unbound)).To(ContainSubstring(`"system:serviceaccount:lifeboat-system:restorer" cannot create resource`))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "identity-app", "a")).To(BeFalse())

	objs, err := charts.Render(charts.Spoke, map[string]any{"clusterName": "spoke-1"}, targets.SystemNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && o.GetName() == "lifeboat-spoke-restore" {
			g.Expect(cp.Client.Create(ctx, o)).To(Succeed())
		}
	}
	g.Expect(cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "restorer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lifeboat-spoke-restore"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: targets.SystemNamespace, Name: "restorer"}}})).To(Succeed())
	g.Eventually(func() string {
		bound := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "bound", "identity", "b1"))
		_ = cp.Client.Delete(ctx, bound)
		return string(bound.Status.Phase)
	}).Should(Equal(string(backupv1alpha1.RestoreSuccess)))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "identity-app", "a")).To(BeTrue())
}
