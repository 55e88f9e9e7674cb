package backuplocation

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Tombstones are written by others (the backup reconciler on force delete,
// cleared by the tombstone reconciler): the location's own status writes,
// on feedback and on spec changes, must never drop them.
func TestStatusWritesKeepTombstones(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createCluster(t, g, "keep-a", nil, true)
	loc := newLocation(t, g, "team-keep", "primary", storage("acct1", "keep", "team-keep"), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"keep-a"}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("keep-a"))
	g.Eventually(status(loc)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.LocationValidationInProgress))

	g.Eventually(func(g Gomega) {
		cur := &fleetv1alpha1.BackupLocation{}
		g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		now := metav1.Now()
		cur.Status.Tombstones = append(cur.Status.Tombstones, fleetv1alpha1.Tombstone{SourceCluster: "keep-a", BackupID: "44444444-dddd", Backup: "old", DeletionTime: &now})
		g.Expect(hubClient.Status().Patch(ctx, cur, patch)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())

	t.Log("feedback changes the connections; the tombstone stays")
	simulateAgent(g, loc, "keep-a", loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "ok", time.Now())
	g.Eventually(status(loc)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.LocationValid))
	g.Expect(status(loc)().Tombstones).To(ConsistOf(HaveField("BackupID", "44444444-dddd")))

	t.Log("a spec change rewrites the status; the tombstone stays")
	patchLocation(g, loc, func(l *fleetv1alpha1.BackupLocation) {
		l.Spec.ValidationInterval = &metav1.Duration{Duration: 2 * time.Hour}
	})
	g.Eventually(func() int64 { return status(loc)().ObservedGeneration }).WithTimeout(timeout).Should(Equal(loc.Generation))
	g.Expect(loc.Generation).To(BeNumerically(">", 1))
	simulateAgent(g, loc, "keep-a", loc.Generation, 2, 2, "Invalid", "AuthorizationFailed", "role revoked", time.Now())
	g.Eventually(status(loc)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.LocationInvalid))
	g.Consistently(func() []fleetv1alpha1.Tombstone { return status(loc)().Tombstones }).WithTimeout(time.Second).Should(HaveLen(1))
}
