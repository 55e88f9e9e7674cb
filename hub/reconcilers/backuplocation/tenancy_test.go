package backuplocation

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// A tenant's location gets BackupTargets only on the clusters of the
// ManagedClusterSets bound to its namespace; the others show
// ClusterNotAllowed and get nothing, and a binding made or removed later
// changes that without touching the location.
func TestTenantLocationReachesOnlyBoundClusters(t *testing.T) {
	g := NewWithT(t)
	const ns, own, other = tenancytest.TenantPrefix + "location", "tenancy-loc-own", "tenancy-loc-other"
	createCluster(t, g, own, nil, true)
	createCluster(t, g, other, nil, true)
	tenancytest.Bind(g, hubClient, ns, "tenancy-loc-set", own)
	tenancytest.Bind(g, hubClient, "tenancy-loc-neighbour", "tenancy-loc-neighbour-set", other)

	loc := newLocation(t, g, ns, "primary", storage("accttenancy", "backups", ""), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{own, other}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(own))
	g.Eventually(connection(loc, other)).WithTimeout(timeout).Should(And(
		HaveField("Phase", backupv1alpha1.TargetInvalid),
		HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed),
		HaveField("Message", ContainSubstring("tenancy-loc-set"))))
	ready := meta.FindStatusCondition(status(loc)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))
	g.Expect(ready.Message).To(ContainSubstring(other))

	t.Log("binding the other cluster's set lets the location reach it")
	tenancytest.Bind(g, hubClient, ns, "tenancy-loc-neighbour-set")
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(own, other))
	g.Eventually(connection(loc, other)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.TargetPending))

	t.Log("unbinding it takes the BackupTarget away again")
	binding := &clusterv1beta2.ManagedClusterSetBinding{}
	binding.Namespace, binding.Name = ns, "tenancy-loc-neighbour-set"
	g.Expect(hubClient.Delete(context.Background(), binding)).To(Succeed())
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(own))
	g.Eventually(connection(loc, other)).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))

	t.Log("a namespace with no binding reaches no cluster")
	lone := newLocation(t, g, tenancytest.TenantPrefix+"location-lone", "primary", storage("accttenancylone", "backups", ""), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{own}
	})
	g.Eventually(connection(lone, own)).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))
	g.Consistently(workClusters(lone)).WithTimeout(timeout / 5).Should(BeEmpty())
}

// The API server refuses a BackupTenant that could not name a hub namespace
// or whose namespaces are not names or prefixes, with a message that says so.
func TestBackupTenantIsValidated(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []struct {
		name    string
		grant   backupv1alpha1.Grant
		message string
	}{
		{"Not_A_Namespace", backupv1alpha1.Grant{}, "named like the hub namespace"},
		{"tenancy-invalid-pattern", backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{"shop-*-x"}}, "prefix ending in '*'"},
		{"tenancy-invalid-permission", backupv1alpha1.Grant{ClusterScopedResources: "Yes"}, "Allow"},
	} {
		bt := &fleetv1alpha1.BackupTenant{Spec: fleetv1alpha1.BackupTenantSpec{Grant: c.grant}}
		bt.Name = c.name
		err := hubClient.Create(context.Background(), bt)
		g.Expect(err).To(HaveOccurred(), c.name)
		g.Expect(err.Error()).To(ContainSubstring(c.message), c.name)
	}
	ok := &fleetv1alpha1.BackupTenant{Spec: fleetv1alpha1.BackupTenantSpec{Grant: backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{"shop", "shop-*", "*"}}}}
	ok.Name = "tenancy-valid"
	g.Expect(hubClient.Create(context.Background(), ok)).To(Succeed())
	g.Expect(ok.Spec.ClusterScopedResources).To(Equal(backupv1alpha1.Deny), "defaults to Deny")
	g.Expect(ok.Spec.UpdateExistingResources).To(Equal(backupv1alpha1.Deny))
}
