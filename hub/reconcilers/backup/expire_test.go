package backup

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// An expired Backup goes through the normal delete path (a BackupDeletion to
// a cluster with a Valid connection), except the newest restorable backup of
// its cluster and selection, which is kept and says so.
func TestTTLDeletesExpiredBackupsButKeepsTheNewest(t *testing.T) {
	g := NewWithT(t)
	loc := newLocationOn(t, g, "team-ttl", "primary", conn{"ttl-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	hour := &metav1.Duration{Duration: time.Hour}
	newestStart := time.Now().Add(-2 * time.Hour)
	newest := finishedBackup(t, g, loc, "ttl-a", "newest", "Success", newestStart, hour)
	older := finishedBackup(t, g, loc, "ttl-a", "older", "Success", time.Now().Add(-3*time.Hour), hour)

	t.Log("the older one is deleted through the delete path")
	g.Eventually(deletionWorkExists(older, "ttl-a")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(eventReasons(older)()).To(ContainElement(fleetv1alpha1.ReasonTTLExpired))
	g.Expect(finalizers(older)()).To(ContainElement(Finalizer), "the data goes first, then the record")

	t.Log("the newest is kept, with the reason")
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(status(newest)().Conditions, fleetv1alpha1.ConditionExpired)
	}).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonKeptAsNewest),
		HaveField("Message", And(ContainSubstring("newest restorable backup of cluster ttl-a"), ContainSubstring("all namespaces")))))
	g.Expect(status(newest)().Expiration.Time).To(BeTemporally("~", newestStart.Add(time.Hour), time.Second))
	g.Expect(eventReasons(newest)()).To(ContainElement(fleetv1alpha1.ReasonKeptAsNewest))
	g.Consistently(deletionWorkExists(newest, "ttl-a")).WithTimeout(2 * time.Second).Should(BeFalse())
	g.Expect(exists(newest)()).To(BeTrue())
}

// Changing the ttl after completion moves the expiration, both ways.
func TestChangingTTLMovesTheExpiration(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocationOn(t, g, "team-ttl-change", "primary", conn{"ttl-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	start := time.Now().Add(-5 * time.Hour)
	b := finishedBackup(t, g, loc, "ttl-b", "weekly", "Success", start, &metav1.Duration{Duration: 10 * time.Hour})
	// A newer backup without ttl, so b is not the newest.
	finishedBackup(t, g, loc, "ttl-b", "latest", "Success", time.Now().Add(-time.Minute), nil)

	g.Eventually(func() *metav1.Time { return status(b)().Expiration }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("~", start.Add(10*time.Hour), time.Second)))
	setTTL(ctx, g, b, 20*time.Hour)
	g.Eventually(func() *metav1.Time { return status(b)().Expiration }).WithTimeout(timeout).
		Should(HaveField("Time", BeTemporally("~", start.Add(20*time.Hour), time.Second)))
	g.Consistently(exists(b)).WithTimeout(time.Second).Should(BeTrue())

	t.Log("shortened below its age, it expires at once")
	setTTL(ctx, g, b, 2*time.Hour)
	g.Eventually(deletionWorkExists(b, "ttl-b")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(eventMessages(b, fleetv1alpha1.ReasonTTLExpired)()).To(ContainElement(ContainSubstring("ttl 2h0m0s passed")))
}

// finishedBackup creates a Backup on cluster and feeds back that it ended in
// phase, having started at start.
func finishedBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, name, phase string, start time.Time, ttl *metav1.Duration) *fleetv1alpha1.Backup {
	b := newBackup(t, g, loc, cluster, name, func(s *fleetv1alpha1.BackupSpec) { s.TTL = ttl })
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": phase, "observedGeneration": int64(1), "backupID": string(b.UID), "manifestSHA256": sealed,
		"startTime": start.UTC().Format(time.RFC3339), "completionTime": start.Add(time.Minute).UTC().Format(time.RFC3339),
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupPhase(phase)))
	return b
}

func setTTL(ctx context.Context, g *WithT, b *fleetv1alpha1.Backup, ttl time.Duration) {
	cur := &fleetv1alpha1.Backup{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(b), cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.TTL = &metav1.Duration{Duration: ttl}
	g.Expect(hubClient.Patch(ctx, cur, patch)).To(Succeed())
}

// A synced Backup expires at the expiration it was imported with (the ttl
// its maker set), through the delete path.
func TestSyncedBackupExpiresAtItsImportedExpiration(t *testing.T) {
	g := NewWithT(t)
	loc := newLocationOn(t, g, "team-ttl-synced", "primary", conn{"ttl-c", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	syncedBackup(t, g, loc, "ttl-c", "newer", time.Now().Add(-time.Hour), nil)
	passed := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	older := syncedBackup(t, g, loc, "ttl-c", "older", time.Now().Add(-3*time.Hour), &passed)
	annotate(g, older, "example.com/touch", "1") // a status change alone is not reconciled
	g.Eventually(deletionWorkExists(older, "ttl-c")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(eventMessages(older, fleetv1alpha1.ReasonTTLExpired)()).To(ContainElement(ContainSubstring("(imported with the backup) passed")))
}

// syncedBackup creates a Backup as a sync imports it: Success, with the
// start time and expiration of its catalog entry.
func syncedBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, name string, start time.Time, expiration *metav1.Time) *fleetv1alpha1.Backup {
	ctx := context.Background()
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: name, Labels: map[string]string{fleetv1alpha1.SyncOriginLabel: fleetv1alpha1.SyncOriginValue}},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	patch := client.MergeFrom(b.DeepCopy())
	started := metav1.NewTime(start)
	b.Status.Phase, b.Status.Origin, b.Status.BackupID = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSynced, backupv1alpha1.BackupID(name+"-id")
	b.Status.StartTime, b.Status.Expiration = &started, expiration
	g.Expect(hubClient.Status().Patch(ctx, b, patch)).To(Succeed())
	return b
}
