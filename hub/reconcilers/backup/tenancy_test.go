package backup

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

// A tenant's Backup is refused, with nothing sent, when its cluster is not
// bound to the namespace or it asks for spoke namespaces or cluster-scoped
// resources the BackupTenant does not grant; what is granted is sent with
// the grant on it.
func TestTenantBackupsStayInTheirGrant(t *testing.T) {
	g := NewWithT(t)
	const ns, own, other = tenancytest.TenantPrefix + "backup", "tenancy-backup-own", "tenancy-backup-other"
	loc := newLocation(t, g, ns, "primary", own, backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	createNamespace(g, other)
	shop := &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop-1"}}

	t.Log("no binding, no grant: nothing is allowed")
	b := newBackup(t, g, loc, own, "unbound", func(s *fleetv1alpha1.BackupSpec) { s.Selection = shop })
	expectRefused(g, b, fleetv1alpha1.ReasonClusterNotAllowed, "no ManagedClusterSet is bound")

	tenancytest.Bind(g, hubClient, ns, "tenancy-backup-set", own)
	tenancytest.Namespace(g, hubClient, other)
	tenancytest.Bind(g, hubClient, "tenancy-backup-neighbour", "tenancy-backup-neighbour-set", other)

	t.Log("bound, but no grant: no spoke namespace is allowed")
	b = newBackup(t, g, loc, own, "ungranted", func(s *fleetv1alpha1.BackupSpec) { s.Selection = shop })
	expectRefused(g, b, fleetv1alpha1.ReasonNamespaceNotAllowed, "there is no BackupTenant")

	tenancytest.Grant(g, hubClient, ns, backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{"shop-*"}})
	for _, c := range []struct {
		name, cluster, reason, message string
		sel                            *backupv1alpha1.ResourceSelection
	}{
		{"another-tenants-cluster", other, fleetv1alpha1.ReasonClusterNotAllowed, "tenancy-backup-set", shop},
		{"kube-system", own, fleetv1alpha1.ReasonNamespaceNotAllowed, "spoke namespace kube-system",
			&backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop-1", "kube-system"}}},
		{"every-namespace", own, fleetv1alpha1.ReasonNamespaceNotAllowed, "includedNamespaces", nil},
		{"cluster-scoped", own, fleetv1alpha1.ReasonClusterScopedNotAllowed, "clusterScopedResources",
			&backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop-1"}, ClusterScopedResources: backupv1alpha1.ClusterScopedInclude}},
	} {
		t.Log(c.name)
		b := newBackup(t, g, loc, c.cluster, c.name, func(s *fleetv1alpha1.BackupSpec) { s.Selection = c.sel })
		expectRefused(g, b, c.reason, c.message)
	}

	t.Log("within the grant: sent, with the grant for the spoke to enforce")
	b = newBackup(t, g, loc, own, "granted", func(s *fleetv1alpha1.BackupSpec) { s.Selection = shop })
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	ab := applicationBackupIn(g, work(g, b))
	g.Expect(ab.Spec.Tenancy).To(Equal(&backupv1alpha1.Tenancy{HubNamespace: ns, Grant: backupv1alpha1.Grant{
		Namespaces: []backupv1alpha1.NamespacePattern{"shop-*"}, ClusterScopedResources: backupv1alpha1.Deny, UpdateExistingResources: backupv1alpha1.Deny}}))

	t.Log("a fleet admin's Backup carries no tenancy")
	admin := newLocation(t, g, "team-tenancy-admin", "primary", other, backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	b = newBackup(t, g, admin, other, "everything", nil)
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	g.Expect(applicationBackupIn(g, work(g, b)).Spec.Tenancy).To(BeNil())
}

// expectRefused waits for b to fail with reason and a message containing
// message, and checks that no ManifestWork exists in any cluster namespace
// for it.
func expectRefused(g *WithT, b *fleetv1alpha1.Backup, reason, message string) {
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	ready := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(reason))
	g.Expect(ready.Message).To(ContainSubstring(message))
	works := &workv1.ManifestWorkList{}
	g.Expect(hubClient.List(context.Background(), works)).To(Succeed())
	for _, mw := range works.Items {
		g.Expect(mw.Name).NotTo(Equal(workKey(b).Name), "no work for a refused backup in %s", mw.Namespace)
	}
}
