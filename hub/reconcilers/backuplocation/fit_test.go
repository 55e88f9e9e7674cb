package backuplocation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// etcdRequestLimit is etcd's default --max-request-bytes: a status write of
// a larger object fails.
const etcdRequestLimit = 1536 * 1024

// connections are n connections from clusters with names of the longest
// length, every other one Valid, each with a message of the longest length
// the hub keeps and a reason of reasonLen characters.
func connections(n, reasonLen int) []fleetv1alpha1.ClusterConnection {
	now := metav1.Now()
	out := make([]fleetv1alpha1.ClusterConnection, n)
	for i := range out {
		phase, reason := backupv1alpha1.TargetInvalid, "AuthorizationFailed"
		if i%2 == 0 {
			phase, reason = backupv1alpha1.TargetValid, "ValidationSucceeded"
		}
		if reasonLen > 0 {
			reason = strings.Repeat("R", reasonLen)
		}
		out[i] = fleetv1alpha1.ClusterConnection{
			Cluster:  fmt.Sprintf("%s-%05d", strings.Repeat("c", 57), i),
			ClientID: "00000000-0000-0000-0000-000000000001",
			ValidationState: backupv1alpha1.ValidationState{
				Phase: phase, Reason: reason, LastValidationTime: &now,
				Message: fmt.Sprintf("cluster %d: %s", i, strings.Repeat("m", fleetv1alpha1.MaxConnectionMessage)),
			},
		}
	}
	return out
}

// A location's status lists every selected cluster with its phase and
// reason, within MaxClustersBytes, up to MaxLocationClusters of the longest
// names: messages give way first, the Valid ones' before the others'.
func TestFitClustersKeepsEveryClusterWithinTheBudget(t *testing.T) {
	for _, tc := range []struct {
		clusters             int
		invalidMessagesWhole bool
	}{
		{clusters: 100, invalidMessagesWhole: true},
		{clusters: 1000, invalidMessagesWhole: true},
		{clusters: fleetv1alpha1.MaxLocationClusters},
	} {
		t.Run(fmt.Sprint(tc.clusters), func(t *testing.T) {
			g := NewWithT(t)
			want := connections(tc.clusters, 0)
			loc := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "primary"}}
			loc.Spec.Identity.ClientID = "00000000-0000-0000-0000-000000000001"
			loc.Status.Clusters = connections(tc.clusters, 0)
			aggregate(loc)
			fitClusters(loc)

			g.Expect(clustersBytes(loc.Status.Clusters)).To(BeNumerically("<=", fleetv1alpha1.MaxClustersBytes))
			data, err := json.Marshal(loc)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(len(data)).To(BeNumerically("<", etcdRequestLimit))
			g.Expect(loc.Status.Clusters).To(HaveLen(tc.clusters))
			g.Expect(loc.Status.SelectedClusters).To(BeEquivalentTo(tc.clusters))
			g.Expect(loc.Status.ValidClusters).To(BeEquivalentTo((tc.clusters + 1) / 2))
			for i, c := range loc.Status.Clusters {
				g.Expect(c.Cluster).To(Equal(want[i].Cluster))
				g.Expect(c.Phase).To(Equal(want[i].Phase))
				g.Expect(c.Reason).To(Equal(want[i].Reason))
				switch {
				case tc.invalidMessagesWhole && c.Phase == backupv1alpha1.TargetInvalid:
					g.Expect(c.Message).To(Equal(want[i].Message))
				case tc.clusters == 100:
					g.Expect(c.Message).To(Equal(want[i].Message), "a small list keeps every message")
				}
			}
			if tc.clusters == 1000 {
				g.Expect(loc.Status.Clusters[0].Message).To(BeEmpty(), "a Valid connection's message goes first")
			}
		})
	}
}

// Reasons come from the clusters: when even without messages the
// connections do not fit, the location serves no cluster and says why,
// rather than a status write that etcd refuses.
func TestFitClustersRefusesWhatCannotFit(t *testing.T) {
	g := NewWithT(t)
	loc := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "primary", Generation: 3}}
	loc.Status.Clusters = connections(fleetv1alpha1.MaxLocationClusters, 1024)
	aggregate(loc)
	fitClusters(loc)

	g.Expect(loc.Status.Clusters).To(BeEmpty())
	g.Expect(loc.Status.Phase).To(Equal(fleetv1alpha1.LocationInvalid))
	g.Expect(loc.Status.SelectedClusters).To(BeEquivalentTo(fleetv1alpha1.MaxLocationClusters))
	g.Expect(loc.Status.ValidClusters).To(BeZero())
	g.Expect(loc.Status.ObservedGeneration).To(BeEquivalentTo(3))
	for _, typ := range []string{fleetv1alpha1.ConditionReady, fleetv1alpha1.ConditionValidated} {
		g.Expect(loc.Status.Conditions).To(ContainElement(And(
			HaveField("Type", typ), HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonTooManyClusters),
			HaveField("Message", ContainSubstring("selects 5000 cluster(s), more than a location can serve")))))
	}
}
