package backuplocation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// statusBudget is what a location's status may take so that the whole
// location, with its spec, tombstones and managedFields, stays well below
// etcd's default --max-request-bytes (1.5 MiB).
const statusBudget = 512 * 1024

// manyConnections are n connections from clusters with names of the longest
// length, with the longest message the hub keeps and a long reason: every
// third Valid, every third Invalid, every third Pending.
func manyConnections(n int) []fleetv1alpha1.ClusterConnection {
	now := metav1.Now()
	phases := []backupv1alpha1.TargetPhase{backupv1alpha1.TargetValid, backupv1alpha1.TargetInvalid, backupv1alpha1.TargetPending}
	out := make([]fleetv1alpha1.ClusterConnection, n)
	for i := range out {
		out[i] = fleetv1alpha1.ClusterConnection{
			Cluster:  fmt.Sprintf("%s-%05d", strings.Repeat("c", 57), i),
			ClientID: "00000000-0000-0000-0000-000000000001",
			ValidationState: backupv1alpha1.ValidationState{
				Phase: phases[i%3], Reason: strings.Repeat("R", 256), LastValidationTime: &now,
				Message: fmt.Sprintf("cluster %d: %s", i, strings.Repeat("m", fleetv1alpha1.MaxConnectionMessage)),
			},
		}
	}
	return out
}

// Whatever the clusters report, a location's status counts every cluster and
// lists at most MaxNotValidClusters that are not Valid, the Invalid ones
// first: at MaxLocationClusters of the longest names, messages and reasons
// it stays far below etcd's limit (before, the list of every connection
// took 1 MiB and was cut to fit).
func TestSummarizeCountsEveryClusterAndListsFewNotValid(t *testing.T) {
	for _, n := range []int{9, 300, fleetv1alpha1.MaxLocationClusters} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g := NewWithT(t)
			loc := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "primary", Generation: 2}}
			conns := manyConnections(n)
			summarize(loc, conns)

			st := loc.Status
			g.Expect(st.SelectedClusters).To(BeEquivalentTo(n))
			valid, invalid, pending := (n+2)/3, (n+1)/3, n/3
			g.Expect(st.ValidClusters).To(BeEquivalentTo(valid))
			g.Expect(st.InvalidClusters).To(BeEquivalentTo(invalid))
			g.Expect(st.PendingClusters).To(BeEquivalentTo(pending))
			g.Expect(st.ObservedGeneration).To(BeEquivalentTo(2))
			g.Expect(st.Phase).To(Equal(fleetv1alpha1.LocationLimitedAvailability))

			notValid := invalid + pending
			listed := min(notValid, fleetv1alpha1.MaxNotValidClusters)
			g.Expect(st.NotValid).To(HaveLen(listed))
			g.Expect(st.NotValidOmitted).To(BeEquivalentTo(notValid - listed))
			g.Expect(st.NotValid[0]).To(Equal(conns[1]), "the first Invalid connection first, whole")
			if n > 2*fleetv1alpha1.MaxNotValidClusters {
				g.Expect(st.NotValid).To(HaveEach(HaveField("Phase", backupv1alpha1.TargetInvalid)), "Invalid connections before Pending ones")
			} else {
				g.Expect(st.NotValid[listed-1].Phase).To(Equal(backupv1alpha1.TargetPending))
			}
			ready := apimeta.FindStatusCondition(loc.Status.Conditions, fleetv1alpha1.ConditionReady)
			g.Expect(ready.Message).To(HavePrefix(fmt.Sprintf("valid on %d of %d selected cluster(s); not valid on %s-00001 (Invalid: ", valid, n, strings.Repeat("c", 57))))
			g.Expect(ready.Message).To(HaveSuffix(fmt.Sprintf(" and %d more", notValid-5)))

			data, err := json.Marshal(st)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(len(data)).To(BeNumerically("<", statusBudget))
		})
	}
}
