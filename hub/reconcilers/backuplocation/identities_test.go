package backuplocation

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// One location over 26 clusters, more than the 20 federated credentials one
// Entra ID identity may have: spec.identities gives each group of clusters
// its own identity (first matching entry wins, spec.identity for the rest),
// each cluster's BackupTarget carries its identity, and the location is
// Valid on all of them. The status says which identity each cluster uses.
func TestLocationMapsClustersToIdentities(t *testing.T) {
	g := NewWithT(t)
	idA := backupv1alpha1.AzureWorkloadIdentity{ClientID: "0a0a0a0a-0000-4000-8000-00000000000a", TenantID: "00000000-0000-0000-0000-000000000002"}
	idB := backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b0b0b0b-0000-4000-8000-00000000000b", TenantID: "00000000-0000-0000-0000-000000000002"}
	const n = 26
	want := map[string]string{}
	for i := range n {
		name, group := fmt.Sprintf("ids-%02d", i), "a"
		switch {
		case i >= 13 && i < n-1:
			group = "b"
		case i == n-1:
			group = "other"
		}
		createCluster(t, g, name, map[string]string{"fleet": "ids", "group": group}, true)
		want[name] = map[string]string{"a": idA.ClientID, "b": idB.ClientID, "other": "00000000-0000-0000-0000-000000000001"}[group]
	}
	// ids-00 is named by the second entry too, but the first entry selects it first.
	loc := newLocation(t, g, "team-ids", "fleet-wide", storage("acctids", "backups", ""), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "ids"}}
		s.Identities = []fleetv1alpha1.ClusterIdentity{
			{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"group": "a"}}, Identity: idA},
			{Clusters: []backupv1alpha1.ClusterName{"ids-00"}, ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"group": "b"}}, Identity: idB},
		}
	})

	t.Log("each cluster's BackupTarget signs in as its group's identity, at most 20 clusters per identity")
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(HaveLen(n))
	perIdentity := map[string]int{}
	for cluster, clientID := range want {
		target := targetIn(g, work(g, loc, cluster))
		g.Expect(target.Spec.Identity.ClientID).To(Equal(clientID), "identity of %s", cluster)
		g.Expect(target.Spec.Azure).To(Equal(loc.Spec.Azure))
		perIdentity[clientID]++
	}
	g.Expect(perIdentity).To(HaveEach(BeNumerically("<=", 20)))
	g.Expect(perIdentity).To(HaveLen(3))

	t.Log("every cluster validates: the location is Valid on all 26")
	for cluster := range want {
		simulateAgent(g, loc, cluster, loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "ok", time.Now())
	}
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.LocationValid),
		HaveField("ValidClusters", BeEquivalentTo(n)),
		HaveField("SelectedClusters", BeEquivalentTo(n)),
	))

	t.Log("a cluster that cannot sign in is listed with the identity it uses")
	simulateAgent(g, loc, "ids-00", loc.Generation, 1, 1, "Invalid", "AuthenticationFailed", "no federated credential", time.Now())
	g.Eventually(func() []fleetv1alpha1.ClusterConnection { return status(loc)().NotValid }).WithTimeout(timeout).Should(ConsistOf(And(
		HaveField("Cluster", "ids-00"), HaveField("ClientID", want["ids-00"]), HaveField("Reason", "AuthenticationFailed"))))
}

// An identities entry whose selector cannot be parsed makes the location not
// Ready with InvalidSelector, naming the entry, and nothing is sent.
func TestLocationWithAnInvalidIdentitySelector(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "ids-bad", map[string]string{"fleet": "ids-bad"}, true)
	loc := newLocation(t, g, "team-ids-bad", "primary", storage("acctidsbad", "backups", ""), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"ids-bad"}
		s.Identities = []fleetv1alpha1.ClusterIdentity{{
			ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "group", Operator: metav1.LabelSelectorOpIn}}},
			Identity:        backupv1alpha1.AzureWorkloadIdentity{ClientID: "0a0a0a0a-0000-4000-8000-00000000000a", TenantID: "00000000-0000-0000-0000-000000000002"},
		}}
	})
	g.Eventually(status(loc)).WithTimeout(timeout).Should(HaveField("Conditions", ContainElement(And(
		HaveField("Type", fleetv1alpha1.ConditionReady),
		HaveField("Reason", fleetv1alpha1.ReasonInvalidSelector),
		HaveField("Message", ContainSubstring("identities[0].clusterSelector")),
	))))
	g.Consistently(workClusters(loc)).WithTimeout(2 * time.Second).Should(BeEmpty())
}
