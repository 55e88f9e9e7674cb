package restore

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	workv1 "open-cluster-management.io/api/work/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// A tenant's Restore is refused, with nothing sent, when its target cluster
// is not bound to the namespace, or it would write into a spoke namespace,
// cluster-scoped objects or over existing objects beyond the BackupTenant's
// grant; what is granted is sent with the grant on it.
func TestTenantRestoresStayInTheirGrant(t *testing.T) {
	g := NewWithT(t)
	const ns, own, other = tenancytest.TenantPrefix + "restore", "tenancy-restore-own", "tenancy-restore-other"
	loc := newLocation(t, g, ns, "primary", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok", own)
	addConnection(g, loc, other, backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	b := newBackup(t, g, loc, own, "nightly", fleetv1alpha1.BackupSuccess, "id-tenancy", func(s *fleetv1alpha1.BackupSpec) {
		s.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop-1"}}
	})

	t.Log("no binding, no grant: nothing is allowed")
	rs := newRestore(t, g, ns, "unbound", b.Name, "", nil)
	expectRefused(g, rs, own, fleetv1alpha1.ReasonClusterNotAllowed, "no ManagedClusterSet is bound")

	tenancytest.Bind(g, hubClient, ns, "tenancy-restore-set", own)
	tenancytest.Bind(g, hubClient, "tenancy-restore-neighbour", "tenancy-restore-neighbour-set", other)
	tenancytest.Grant(g, hubClient, ns, backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{"shop-*"}})

	shop := []backupv1alpha1.NamespaceName{"shop-1"}
	for _, c := range []struct {
		name, cluster, reason, message string
		opts                           backupv1alpha1.RestoreOptions
	}{
		{"to-another-tenants-cluster", other, fleetv1alpha1.ReasonClusterNotAllowed, "may not use cluster " + other, backupv1alpha1.RestoreOptions{}},
		{"mapped-into-kube-system", own, fleetv1alpha1.ReasonNamespaceNotAllowed, "spoke namespace kube-system (after namespaceMapping)",
			backupv1alpha1.RestoreOptions{NamespaceMapping: backupv1alpha1.NamespaceMapping{"shop-1": "kube-system"}}},
		{"mapping-names-kube-system", own, fleetv1alpha1.ReasonNamespaceNotAllowed, "kube-system",
			backupv1alpha1.RestoreOptions{NamespaceMapping: backupv1alpha1.NamespaceMapping{"elsewhere": "kube-system"}}},
		{"selects-kube-system", own, fleetv1alpha1.ReasonNamespaceNotAllowed, "kube-system",
			backupv1alpha1.RestoreOptions{Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"kube-system"}}}},
		{"cluster-scoped", own, fleetv1alpha1.ReasonClusterScopedNotAllowed, "clusterScopedResources",
			backupv1alpha1.RestoreOptions{Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: shop, ClusterScopedResources: backupv1alpha1.ClusterScopedInclude}}},
		{"update", own, fleetv1alpha1.ReasonUpdateNotAllowed, "existingResourcePolicy Update",
			backupv1alpha1.RestoreOptions{ExistingResourcePolicy: backupv1alpha1.ExistingResourceUpdate}},
	} {
		t.Log(c.name)
		rs := newRestore(t, g, ns, c.name, b.Name, c.cluster, &c.opts)
		expectRefused(g, rs, c.cluster, c.reason, c.message)
	}

	t.Log("within the grant: sent, with the grant for the spoke to enforce")
	rs = newRestore(t, g, ns, "granted", b.Name, "", &backupv1alpha1.RestoreOptions{NamespaceMapping: backupv1alpha1.NamespaceMapping{"shop-1": "shop-2"}})
	g.Eventually(workExists(rs, own)).WithTimeout(timeout).Should(BeTrue())
	ar := applicationRestoreIn(g, work(g, rs, own))
	g.Expect(ar.Spec.Tenancy).To(Equal(&backupv1alpha1.Tenancy{HubNamespace: ns, Grant: backupv1alpha1.Grant{
		Namespaces: []backupv1alpha1.NamespacePattern{"shop-*"}, ClusterScopedResources: backupv1alpha1.Deny, UpdateExistingResources: backupv1alpha1.Deny}}))
}

// expectRefused waits for rs to fail with reason and a message containing
// message, and checks that no ManifestWork was made for it.
func expectRefused(g *WithT, rs *fleetv1alpha1.Restore, cluster, reason, message string) {
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	ready := meta.FindStatusCondition(status(rs)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(reason))
	g.Expect(ready.Message).To(ContainSubstring(message))
	g.Expect(workExists(rs, cluster)()).To(BeFalse())
	works := &workv1.ManifestWorkList{}
	g.Expect(hubClient.List(context.Background(), works)).To(Succeed())
	for _, mw := range works.Items {
		g.Expect(mw.Name).NotTo(Equal(workKey(rs, cluster).Name), "no work for a refused restore in %s", mw.Namespace)
	}
}
