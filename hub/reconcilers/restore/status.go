package restore

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

// finished is true for the phases a restore ends in.
func finished(p backupv1alpha1.RestorePhase) bool {
	switch p {
	case backupv1alpha1.RestoreSuccess, backupv1alpha1.RestorePartialSuccess, backupv1alpha1.RestoreFailed:
		return true
	}
	return false
}

// dispatched is true once the ApplicationRestore was sent: from then on the
// spoke decides how the restore ends.
func dispatched(rs *fleetv1alpha1.Restore) bool {
	return meta.IsStatusConditionTrue(rs.Status.Conditions, fleetv1alpha1.ConditionDispatched)
}

func initStatus(rs *fleetv1alpha1.Restore) {
	if rs.Status.Phase == "" {
		rs.Status.Phase = backupv1alpha1.RestorePending
	}
}

// fail ends the Restore before anything was sent to a cluster.
func fail(ctx context.Context, rs *fleetv1alpha1.Restore, reason, msg string) {
	now := metav1.Now()
	rs.Status.Phase = backupv1alpha1.RestoreFailed
	rs.Status.CompletionTime = &now
	rs.Status.ObservedGeneration = rs.Generation
	setCondition(rs, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(rs, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
	setCondition(rs, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, reason, "nothing was sent to a cluster")
	ctrl.LoggerFrom(ctx).Info("Failed restore before dispatch", "reason", reason, "message", msg)
}

// mirror copies the ApplicationRestore's feedback into rs's status, only when
// it was read from the spoke object of rs's generation and the spoke's status
// describes that object's spec; otherwise rs keeps the status it has.
func mirror(rs *fleetv1alpha1.Restore, mw *workv1.ManifestWork) {
	st, ok := dispatch.Feedback(mw, rs.Generation)
	if !ok {
		if rs.Status.Phase == backupv1alpha1.RestorePending {
			setCondition(rs, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonWaitingForCluster,
				fmt.Sprintf("waiting for cluster %s to start the ApplicationRestore", rs.Status.Cluster))
		}
		return
	}
	run, ok := dispatch.ReadRun(st)
	if !ok {
		return
	}
	rs.Status.Phase = backupv1alpha1.RestorePhase(run.Phase)
	rs.Status.ObservedGeneration = rs.Generation
	if run.Progress != nil {
		rs.Status.Progress = run.Progress
	}
	rs.Status.Warnings, rs.Status.Errors = run.Warnings, run.Errors
	if l := st.Values["log"].String; l != "" && len(l) <= 1024 {
		rs.Status.Log = l
	}
	if run.StartTime != nil {
		rs.Status.StartTime = run.StartTime
	}
	if run.CompletionTime != nil {
		rs.Status.CompletionTime = run.CompletionTime
	}

	msg := run.Message
	if msg == "" {
		msg = fmt.Sprintf("the ApplicationRestore on cluster %s is %s", rs.Status.Cluster, run.Phase)
	}
	setCondition(rs, fleetv1alpha1.ConditionReady, run.Ready, run.Reason, msg)
	completed := metav1.ConditionFalse
	if finished(rs.Status.Phase) {
		completed = metav1.ConditionTrue
	}
	setCondition(rs, fleetv1alpha1.ConditionCompleted, completed, run.Reason, msg)
}

func itemsDone(rs *fleetv1alpha1.Restore) int64 {
	if rs.Status.Progress == nil {
		return 0
	}
	return rs.Status.Progress.ItemsDone
}

func setCondition(rs *fleetv1alpha1.Restore, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: rs.Generation,
	})
}
