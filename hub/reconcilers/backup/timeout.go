package backup

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// deadline is when a dispatched Backup's run times out: the time its
// ApplicationBackup was sent to the cluster plus its timeout. Zero: never.
func deadline(b *fleetv1alpha1.Backup) time.Time {
	c := meta.FindStatusCondition(b.Status.Conditions, fleetv1alpha1.ConditionDispatched)
	if b.Spec.Timeout == nil || c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}
	}
	return c.LastTransitionTime.Add(b.Spec.Timeout.Duration)
}

// timeOut fails a running Backup past its deadline, with reason
// ClusterOffline when its BackupCluster is not Available and Timeout
// otherwise, and returns true. The run itself is stopped once the Failed
// status is written (see stopTimedOut), so that a failed status write
// cannot send the run again.
func (r *Reconciler) timeOut(ctx context.Context, b *fleetv1alpha1.Backup) (bool, error) {
	dl := deadline(b)
	if dl.IsZero() || r.now().Before(dl) {
		return false, nil
	}
	sent := dl.Add(-b.Spec.Timeout.Duration).UTC().Format(time.RFC3339)
	reason := fleetv1alpha1.ReasonTimeout
	msg := fmt.Sprintf("the backup did not finish within its timeout of %s after it was sent to cluster %s at %s",
		b.Spec.Timeout.Duration, b.Spec.Cluster, sent)
	bc := &fleetv1alpha1.BackupCluster{}
	switch err := r.Get(ctx, client.ObjectKey{Name: string(b.Spec.Cluster)}, bc); {
	case apierrors.IsNotFound(err):
		reason = fleetv1alpha1.ReasonClusterOffline
		msg += fmt.Sprintf(", and BackupCluster %s no longer exists", b.Spec.Cluster)
	case err != nil:
		return false, err
	case !meta.IsStatusConditionTrue(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable):
		reason = fleetv1alpha1.ReasonClusterOffline
		msg += ", and the cluster is not Available"
		if c := meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable); c != nil && c.Message != "" {
			msg += " (" + c.Message + ")"
		}
	}
	msg += ". The run was stopped: the cluster aborts it and deletes what it wrote (at once, or when it is back), so no backup is committed"
	now := metav1.NewTime(r.now())
	b.Status.Phase = fleetv1alpha1.BackupFailed
	b.Status.CompletionTime = &now
	b.Status.ObservedGeneration = b.Generation
	setCondition(b, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(b, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
	ctrl.LoggerFrom(ctx).Info("Backup timed out", "reason", reason, "deadline", dl)
	return true, nil
}

// stopTimedOut stops the run of a Backup that failed on its timeout, the
// same way deleting a running Backup does. The data it may have written
// stays the Backup's: deleting the Backup deletes it.
func (r *Reconciler) stopTimedOut(ctx context.Context, b *fleetv1alpha1.Backup) error {
	c := meta.FindStatusCondition(b.Status.Conditions, fleetv1alpha1.ConditionCompleted)
	if b.Status.Phase != fleetv1alpha1.BackupFailed || c == nil ||
		(c.Reason != fleetv1alpha1.ReasonTimeout && c.Reason != fleetv1alpha1.ReasonClusterOffline) {
		return nil
	}
	return r.stopRun(ctx, b)
}

// untilDeadline is how soon a running Backup is looked at again: at its
// deadline, or after runningRecheck, whichever comes first.
func (r *Reconciler) untilDeadline(b *fleetv1alpha1.Backup, recheck time.Duration) time.Duration {
	dl := deadline(b)
	if dl.IsZero() {
		return recheck
	}
	return min(recheck, max(dl.Sub(r.now())+time.Second, time.Second))
}

func (r *Reconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}
