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

// A run not finished within its timeout after dispatch fails with reason
// Timeout, and its ApplicationBackup work is deleted so the cluster stops it;
// before the deadline it keeps running.
func TestRunPastTimeoutFailsAndIsStopped(t *testing.T) {
	g := NewWithT(t)
	newBackupCluster(t, g, "to-online", metav1.ConditionTrue, fleetv1alpha1.ReasonAddOnAvailable, "heartbeat renewed")
	st, b := runningBackupWithTimeout(t, g, "team-timeout", "to-online")
	sent := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionDispatched).LastTransitionTime.Time

	t.Log("before the deadline the run goes on")
	testClock.SetTime(sent.Add(50 * time.Second))
	annotate(g, b, "example.com/poke", "1")
	g.Consistently(status(b)).WithTimeout(2 * time.Second).Should(HaveField("Phase", fleetv1alpha1.BackupInProgress))
	g.Expect(workExists(b)()).To(BeTrue())

	t.Log("past it, the backup fails with reason Timeout and the run is stopped")
	testClock.SetTime(sent.Add(61 * time.Second))
	annotate(g, b, "example.com/poke", "2")
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	ready := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonTimeout),
		HaveField("Message", And(ContainSubstring("timeout of 1m0s"), ContainSubstring("to-online"), ContainSubstring("The run was stopped")))))
	g.Expect(meta.IsStatusConditionTrue(status(b)().Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
	g.Expect(status(b)().CompletionTime).NotTo(BeNil())
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeFalse(), "the ApplicationBackup's work is deleted, so the spoke aborts the run")
	g.Eventually(eventMessages(b, "BackupFailed")).WithTimeout(timeout).Should(ContainElement(ContainSubstring(fleetv1alpha1.ReasonTimeout)))

	t.Log("it stays Failed and is not sent again")
	annotate(g, b, "example.com/poke", "3")
	g.Consistently(workExists(b)).WithTimeout(2 * time.Second).Should(BeFalse())
	g.Expect(status(b)().Phase).To(Equal(fleetv1alpha1.BackupFailed))
}

// A run on a cluster that is not Available fails at its timeout with reason
// ClusterOffline, naming why the cluster is not Available.
func TestRunOnOfflineClusterFailsWithClusterOffline(t *testing.T) {
	g := NewWithT(t)
	newBackupCluster(t, g, "to-offline", metav1.ConditionFalse, fleetv1alpha1.ReasonAddOnUnavailable, "No heartbeat since yesterday")
	st, b := runningBackupWithTimeout(t, g, "team-timeout-offline", "to-offline")
	sent := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionDispatched).LastTransitionTime.Time

	testClock.SetTime(sent.Add(2 * time.Minute))
	annotate(g, b, "example.com/poke", "1")
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	ready := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(And(HaveField("Reason", fleetv1alpha1.ReasonClusterOffline),
		HaveField("Message", And(ContainSubstring("not Available"), ContainSubstring("No heartbeat since yesterday")))))
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeFalse())
}

// newBackupCluster creates BackupCluster name with its Available condition.
func newBackupCluster(t *testing.T, g *WithT, name string, available metav1.ConditionStatus, reason, msg string) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
	g.Expect(hubClient.Create(ctx, bc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, bc) })
	patch := client.MergeFrom(bc.DeepCopy())
	meta.SetStatusCondition(&bc.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ConditionAvailable, Status: available, Reason: reason, Message: msg})
	g.Expect(hubClient.Status().Patch(ctx, bc, patch)).To(Succeed())
}

// runningBackupWithTimeout creates a Backup with a timeout of 1m on cluster
// and feeds back that it runs.
func runningBackupWithTimeout(t *testing.T, g *WithT, ns, cluster string) (fleetv1alpha1.BackupStatus, *fleetv1alpha1.Backup) {
	loc := newLocationOn(t, g, ns, "primary", conn{cluster, backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := newBackup(t, g, loc, cluster, "nightly", func(s *fleetv1alpha1.BackupSpec) { s.Timeout = &metav1.Duration{Duration: time.Minute} })
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": "InProgress", "observedGeneration": int64(1), "backupID": string(b.UID), "itemsDone": int64(1),
		"startTime": time.Now().UTC().Format(time.RFC3339),
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupInProgress))
	return status(b)(), b
}
