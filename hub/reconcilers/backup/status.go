package backup

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// finished is true for the phases a run ends in.
func finished(p fleetv1alpha1.BackupPhase) bool {
	switch p {
	case fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupAborted,
		// A sync found its data gone: no late feedback may make it Success again.
		fleetv1alpha1.BackupCloudBackupMissing:
		return true
	}
	return false
}

// dispatched is true once the ApplicationBackup was sent: from then on the
// spoke, not the location check, decides how the backup ends.
func dispatched(b *fleetv1alpha1.Backup) bool {
	return meta.IsStatusConditionTrue(b.Status.Conditions, fleetv1alpha1.ConditionDispatched)
}

func initStatus(b *fleetv1alpha1.Backup) {
	if b.Status.Origin == "" {
		b.Status.Origin = fleetv1alpha1.OriginHub
		if b.Labels[fleetv1alpha1.LabelSchedule] != "" {
			b.Status.Origin = fleetv1alpha1.OriginSchedule
		}
	}
	if b.Status.Phase == "" {
		b.Status.Phase = fleetv1alpha1.BackupPending
	}
}

// fail ends the Backup before anything was sent to the cluster.
func fail(ctx context.Context, b *fleetv1alpha1.Backup, reason, msg string) {
	now := metav1.Now()
	b.Status.Phase = fleetv1alpha1.BackupFailed
	b.Status.CompletionTime = &now
	b.Status.ObservedGeneration = b.Generation
	setCondition(b, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(b, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
	setCondition(b, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, reason, "nothing was sent to the cluster")
	ctrl.LoggerFrom(ctx).Info("Failed backup before dispatch", "reason", reason, "message", msg)
}

// mirror copies the ApplicationBackup's feedback into b's status, only when
// it was read from the spoke object of b's generation and the spoke's status
// describes that object's spec; otherwise b keeps the status it has.
func mirror(ctx context.Context, b *fleetv1alpha1.Backup, mw *workv1.ManifestWork) {
	st, ok := dispatch.Feedback(mw, b.Generation)
	if !ok {
		if b.Status.Phase == fleetv1alpha1.BackupPending {
			setCondition(b, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonWaitingForCluster,
				fmt.Sprintf("waiting for cluster %s to start the ApplicationBackup", b.Spec.Cluster))
		}
		return
	}
	run, ok := dispatch.ReadRun(st)
	if !ok {
		return
	}
	v := st.Values
	// The folder a deletion removes is the backup ID's: a cluster must not
	// point the hub at another backup's data.
	if id := v["backupID"].String; id != "" && backupv1alpha1.BackupID(id) != backupID(b) {
		failMismatch(ctx, b, id)
		return
	}
	b.Status.Phase = fleetv1alpha1.BackupPhase(run.Phase)
	b.Status.ObservedGeneration = b.Generation
	if s := v["stage"].String; s != "" {
		b.Status.Stage = backupv1alpha1.BackupStage(s)
	}
	// The first digest the source cluster reports is the backup's for good:
	// restores and deletions check backup.json against it.
	if sum := v["manifestSHA256"].String; sum != "" && b.Status.ManifestSHA256 == "" {
		b.Status.ManifestSHA256 = sum
	}
	if run.Progress != nil {
		b.Status.Progress = run.Progress
	}
	b.Status.Warnings, b.Status.Errors = run.Warnings, run.Errors
	keepTime(&b.Status.StartTime, run.StartTime)
	keepTime(&b.Status.CompletionTime, run.CompletionTime)
	keepTime(&b.Status.Expiration, dispatch.Time(v["expiration"]))

	msg := run.Message
	if msg == "" {
		msg = fmt.Sprintf("the ApplicationBackup on cluster %s is %s", b.Spec.Cluster, run.Phase)
	}
	setCondition(b, fleetv1alpha1.ConditionReady, run.Ready, run.Reason, msg)
	completed := metav1.ConditionFalse
	if finished(b.Status.Phase) {
		completed = metav1.ConditionTrue
	}
	setCondition(b, fleetv1alpha1.ConditionCompleted, completed, run.Reason, msg)
}

// failMismatch fails b, whose cluster fed back backup ID reported instead of
// the dispatched one. b keeps the dispatched ID and nothing of the feedback.
func failMismatch(ctx context.Context, b *fleetv1alpha1.Backup, reported string) {
	now := metav1.Now()
	msg := fmt.Sprintf("cluster %s reported backup ID %q, but the hub dispatched %q: the feedback was not recorded", b.Spec.Cluster, reported, backupID(b))
	b.Status.Phase = fleetv1alpha1.BackupFailed
	b.Status.BackupID = backupID(b)
	b.Status.CompletionTime = &now
	b.Status.ObservedGeneration = b.Generation
	setCondition(b, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonBackupIDMismatch, msg)
	setCondition(b, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, fleetv1alpha1.ReasonBackupIDMismatch, msg)
	ctrl.LoggerFrom(ctx).Info("Refused feedback with another backup ID", "reported", reported, "dispatched", backupID(b))
}

// keepTime sets *t to a fed-back time; a missing one leaves it as it is.
func keepTime(t **metav1.Time, fed *metav1.Time) {
	if fed != nil {
		*t = fed
	}
}

func itemsDone(b *fleetv1alpha1.Backup) int64 {
	if b.Status.Progress == nil {
		return 0
	}
	return b.Status.Progress.ItemsDone
}

func setCondition(b *fleetv1alpha1.Backup, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: b.Generation,
	})
}
