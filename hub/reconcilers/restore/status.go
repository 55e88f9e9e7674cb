package restore

import (
	"context"
	"fmt"
	"time"

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
	v := st.Values
	phase := v["phase"].String
	if og, ok := v["observedGeneration"]; phase == "" || !ok || og.Int != st.ObjectGeneration {
		return
	}
	rs.Status.Phase = backupv1alpha1.RestorePhase(phase)
	rs.Status.ObservedGeneration = rs.Generation
	_, total := v["itemsTotal"]
	_, done := v["itemsDone"]
	_, bytes := v["bytesDone"]
	if total || done || bytes {
		rs.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: v["itemsTotal"].Int, ItemsDone: v["itemsDone"].Int, BytesDone: v["bytesDone"].Int}
	}
	rs.Status.Warnings, rs.Status.Errors = int32(v["warnings"].Int), int32(v["errors"].Int)
	setTime(&rs.Status.StartTime, v["startTime"])
	setTime(&rs.Status.CompletionTime, v["completionTime"])

	ready, reason, msg := metav1.ConditionStatus(v["readyStatus"].String), v["readyReason"].String, v["readyMessage"].String
	if ready == "" {
		ready = metav1.ConditionFalse
		if rs.Status.Phase == backupv1alpha1.RestoreInProgress || rs.Status.Phase == backupv1alpha1.RestoreSuccess {
			ready = metav1.ConditionTrue
		}
	}
	if reason == "" {
		reason = phase
	}
	if msg == "" {
		msg = fmt.Sprintf("the ApplicationRestore on cluster %s is %s", rs.Status.Cluster, phase)
	}
	setCondition(rs, fleetv1alpha1.ConditionReady, ready, reason, msg)
	completed := metav1.ConditionFalse
	if finished(rs.Status.Phase) {
		completed = metav1.ConditionTrue
	}
	setCondition(rs, fleetv1alpha1.ConditionCompleted, completed, reason, msg)
}

// setTime sets *t from a fed-back RFC 3339 time; a missing or unreadable one
// leaves it as it is.
func setTime(t **metav1.Time, v dispatch.Value) {
	if v.Type != workv1.String || v.String == "" {
		return
	}
	parsed, err := time.Parse(time.RFC3339, v.String)
	if err != nil {
		return
	}
	*t = &metav1.Time{Time: parsed}
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
