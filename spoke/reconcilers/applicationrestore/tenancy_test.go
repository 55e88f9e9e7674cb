package applicationrestore

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A restore the hub sent for a tenant writes nothing outside the tenant's
// grant: a spec that asks for more is refused before anything is written,
// and what the backup holds beyond the grant is left out object by object.
func TestTenantRestoreStaysInItsGrant(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "tenant", true, false)
	writeBackup(t, store, "mixed", hubOwner,
		ns("tshop-1"), cm("tshop-1", "mine", nil),
		ns("tkube"), cm("tkube", "secret-sauce", nil),
		clusterRole("tenant-power"))
	grant := &backupv1alpha1.Tenancy{HubNamespace: "tenant", Grant: backupv1alpha1.Grant{
		Namespaces: []backupv1alpha1.NamespacePattern{"tshop-*"}, ClusterScopedResources: backupv1alpha1.Deny, UpdateExistingResources: backupv1alpha1.Deny}}
	tenantRestore := func(name string, mutate func(*backupv1alpha1.ApplicationRestoreSpec)) *backupv1alpha1.ApplicationRestore {
		ar := newRestore(targets.SystemNamespace, name, "tenant", "mixed")
		ar.Spec.Tenancy = grant.DeepCopy()
		if mutate != nil {
			mutate(&ar.Spec)
		}
		return reconcile(t, ctx, newReconciler(), ar)
	}

	for _, c := range []struct {
		name, reason, message string
		mutate                func(*backupv1alpha1.ApplicationRestoreSpec)
	}{
		{"mapped-into-tkube", backupv1alpha1.ReasonNamespaceNotAllowed, "may not restore into namespace tkube", func(s *backupv1alpha1.ApplicationRestoreSpec) {
			s.NamespaceMapping = backupv1alpha1.NamespaceMapping{"tshop-1": "tkube"}
		}},
		{"selects-tkube", backupv1alpha1.ReasonNamespaceNotAllowed, "tkube", func(s *backupv1alpha1.ApplicationRestoreSpec) {
			s.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"tkube"}}
		}},
		{"cluster-scoped", backupv1alpha1.ReasonClusterScopedNotAllowed, "cluster-scoped", func(s *backupv1alpha1.ApplicationRestoreSpec) {
			s.Selection = &backupv1alpha1.ResourceSelection{ClusterScopedResources: backupv1alpha1.ClusterScopedInclude}
		}},
		{"update", backupv1alpha1.ReasonUpdateNotAllowed, "Update", func(s *backupv1alpha1.ApplicationRestoreSpec) {
			s.ExistingResourcePolicy = backupv1alpha1.ExistingResourceUpdate
		}},
	} {
		ar := tenantRestore(c.name, c.mutate)
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), c.name)
		g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/"+c.reason), c.name)
		g.Expect(message(ar)).To(ContainSubstring(c.message), c.name)
	}
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "tkube")).To(BeFalse(), "a refused restore writes nothing")
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "tshop-1")).To(BeFalse())

	t.Log("everything in the backup: only the granted namespace is written")
	ar := tenantRestore("everything", nil)
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
	g.Expect(ar.Status.Warnings).To(BeEquivalentTo(3)) // tkube's Namespace and ConfigMap, the ClusterRole
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "tshop-1", "mine")).To(BeTrue())
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "tkube")).To(BeFalse())
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "tkube", "secret-sauce")).To(BeFalse())
	g.Expect(exists(ctx, &rbacv1.ClusterRole{}, "", "tenant-power")).To(BeFalse())

	t.Log("without tenancy (a fleet admin's restore) nothing is held back")
	ar = reconcile(t, ctx, newReconciler(), newRestore(targets.SystemNamespace, "admin", "tenant", "mixed"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "tkube", "secret-sauce")).To(BeTrue())
	g.Expect(exists(ctx, &rbacv1.ClusterRole{}, "", "tenant-power")).To(BeTrue())
}
