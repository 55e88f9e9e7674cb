package applicationrestore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

func roleBinding(namespace, name, clusterRole, serviceAccount string) archive.Item {
	return archive.Item{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings", Kind: "RoleBinding", Namespace: namespace, Name: name,
		Object: fmt.Appendf(nil, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":%q,"namespace":%q},`+
			`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":%q},"subjects":[{"kind":"ServiceAccount","name":%q,"namespace":%q}]}`,
			name, namespace, clusterRole, serviceAccount, namespace)}
}

// A namespace of the same name on another cluster is another team: a team
// restores only this cluster's backups, its own or the hub's, unless the
// cluster admin lists other clusters on the target, and then only its own.
func TestSelfServiceRestoresOnlyThisClustersBackups(t *testing.T) {
	ctx := testCtx(t)
	store := makeTarget(t, ctx, "cross", true, true)
	makeNamespace(t, ctx, "team-c", map[string]string{"selfservice": "cross"})
	writeBackupOf(t, store, "other", "theirs", archive.Owner{Namespace: "team-c"}, cm("team-c", "their-secret", nil))
	writeBackupOf(t, store, "other", "hubs", hubOwner, cm("team-c", "hub-secret", nil))

	restoreFrom := func(name, id string) *backupv1alpha1.ApplicationRestore {
		ar := newRestore("team-c", name, "cross", id)
		ar.Spec.Source.Cluster = "other"
		return reconcile(t, ctx, newReconciler(), ar)
	}
	for _, id := range []string{"theirs", "hubs"} {
		g := NewWithT(t)
		ar := restoreFrom(id, id)
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
		g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonSourceClusterNotAllowed))
		g.Expect(message(ar)).To(ContainSubstring("spec.source names cluster other"))
	}

	g := NewWithT(t)
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: "cross"}, target)).To(Succeed())
	target.Spec.AllowedSourceClusters = []backupv1alpha1.ClusterName{"other"}
	g.Expect(cp.Client.Update(ctx, target)).To(Succeed())
	hub := restoreFrom("hubs-allowed", "hubs")
	g.Expect(condition(hub, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonSourceClusterNotAllowed))
	g.Expect(message(hub)).To(ContainSubstring("hub's backup of cluster other"))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-c", "hub-secret")).To(BeFalse())
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-c", "their-secret")).To(BeFalse())

	own := restoreFrom("theirs-allowed", "theirs")
	g.Expect(own.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(own))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-c", "their-secret")).To(BeTrue())
}

// A team's restore says who asked, writes as them, and writes RBAC, quota
// and policy objects or updates existing ones only where the target allows
// it. The attack: a backup (resealed by someone with write access to the
// container) holds a RoleBinding of cluster-admin for the team's
// ServiceAccount; the team's admin, who may not grant cluster-admin,
// restores it.
func TestSelfServiceWritesAsTheRequester(t *testing.T) {
	ctx := testCtx(t)
	store := makeTarget(t, ctx, "rbac", true, true)
	makeNamespace(t, ctx, "team-r", map[string]string{"selfservice": "rbac"})
	writeBackup(t, store, "forged", archive.Owner{Namespace: "team-r"},
		roleBinding("team-r", "takeover", "cluster-admin", "default"), roleBinding("team-r", "viewers", "view", "default"), cm("team-r", "app", nil))

	t.Run("without a requester", func(t *testing.T) {
		g := NewWithT(t)
		ar := newRestore("team-r", "anonymous", "rbac", "forged")
		ar.Spec.RequestedBy = nil
		ar = reconcile(t, ctx, newReconciler(), ar)
		g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonRequesterRequired))
	})
	t.Run("update not allowed", func(t *testing.T) {
		g := NewWithT(t)
		ar := newRestore("team-r", "update", "rbac", "forged")
		ar.Spec.ExistingResourcePolicy = backupv1alpha1.ExistingResourceUpdate
		ar = reconcile(t, ctx, newReconciler(), ar)
		g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonUpdateNotAllowed))
		g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-r", "app")).To(BeFalse())
	})
	t.Run("policy resources not allowed", func(t *testing.T) {
		g := NewWithT(t)
		ar := reconcile(t, ctx, newReconciler(), newRestore("team-r", "denied", "rbac", "forged"))
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
		g.Expect(ar.Status.Warnings).To(BeEquivalentTo(2))
		g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-r", "app")).To(BeTrue())
		g.Expect(exists(ctx, &rbacv1.RoleBinding{}, "team-r", "takeover")).To(BeFalse())
		g.Expect(exists(ctx, &rbacv1.RoleBinding{}, "team-r", "viewers")).To(BeFalse())
	})
	t.Run("policy resources allowed", func(t *testing.T) {
		g := NewWithT(t)
		target := &backupv1alpha1.BackupTarget{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: "rbac"}, target)).To(Succeed())
		target.Spec.PolicyResources = backupv1alpha1.Allow
		g.Expect(cp.Client.Update(ctx, target)).To(Succeed())

		ar := reconcile(t, ctx, newReconciler(), newRestore("team-r", "allowed", "rbac", "forged"))
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestorePartialSuccess), message(ar))
		g.Expect(ar.Status.Errors).To(BeEquivalentTo(1))
		g.Expect(message(ar)).To(ContainSubstring("takeover"))
		g.Expect(exists(ctx, &rbacv1.RoleBinding{}, "team-r", "takeover")).To(BeFalse(), "the requester may not grant cluster-admin, so neither may their restore")
		g.Expect(exists(ctx, &rbacv1.RoleBinding{}, "team-r", "viewers")).To(BeTrue(), "what the requester may grant is restored")
	})
}

// The chart's admission policy admits a team's ApplicationRestore only from
// the user it names, claiming only groups the user has; the hub's, in
// lifeboat-system, need none.
func TestChartAdmitsRestoresOnlyFromTheirRequester(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	objs, err := charts.Render(charts.Spoke, map[string]any{"clusterName": "spoke-1"}, targets.SystemNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range objs {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, o))).To(Succeed())
			// Other tests create teams' restores as the test's admin.
			t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
		}
	}
	makeNamespace(t, ctx, "team-v", nil)
	user := developer("team-v")
	g.Expect(cp.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-v", Name: "restorer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}})).To(Succeed())
	as := rest.CopyConfig(cp.Config)
	as.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"developers", "system:authenticated"}}
	dev, err := client.New(as, client.Options{Scheme: cp.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	forged := newRestore("team-v", "forged", "any", "b1")
	forged.Spec.RequestedBy.Username = "admin@example.com"
	g.Eventually(func() error { return dev.Create(ctx, forged.DeepCopy()) }).Should(
		MatchError(ContainSubstring("spec.requestedBy must name who creates the restore: username " + user)))
	for name, by := range map[string]*backupv1alpha1.Requester{
		"no-requester": nil,
		"other-group":  {Username: user, Groups: []string{"developers", "system:masters"}},
	} {
		ar := newRestore("team-v", name, "any", "b1")
		ar.Spec.RequestedBy = by
		err := dev.Create(ctx, ar)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: %v", name, err)
	}
	own := newRestore("team-v", "own", "any", "b1")
	own.Spec.RequestedBy.Groups = []string{"developers"}
	g.Expect(dev.Create(ctx, own)).To(Succeed())
	g.Expect(cp.Client.Create(ctx, newRestore(targets.SystemNamespace, "from-the-hub", "any", "b1"))).To(Succeed())
}
