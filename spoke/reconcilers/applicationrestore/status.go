package applicationrestore

import (
	"fmt"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
)

func (r *Reconciler) setInProgress(ar *backupv1alpha1.ApplicationRestore, m *archive.Manifest) {
	now := metav1.NewTime(r.now())
	st := &ar.Status
	st.Phase = backupv1alpha1.RestoreInProgress
	st.ObservedGeneration = ar.Generation
	st.StartTime = &now
	st.Progress = &backupv1alpha1.Progress{ItemsTotal: m.Counts.Items}
	msg := fmt.Sprintf("Restoring the %d objects of backup %s of cluster %s", m.Counts.Items, m.BackupID, m.SourceCluster)
	setConditions(ar, metav1.ConditionTrue, metav1.ConditionFalse, backupv1alpha1.ReasonInProgress, msg)
}

// setWaiting records why a restore that may run waits, Pending.
func (r *Reconciler) setWaiting(ar *backupv1alpha1.ApplicationRestore, why string) {
	ar.Status.Phase = backupv1alpha1.RestorePending
	ar.Status.ObservedGeneration = ar.Generation
	setConditions(ar, metav1.ConditionFalse, metav1.ConditionFalse, backupv1alpha1.ReasonWaiting, why)
}

func (r *Reconciler) setFailed(ar *backupv1alpha1.ApplicationRestore, reason, message string) {
	now := metav1.NewTime(r.now())
	st := &ar.Status
	st.Phase = backupv1alpha1.RestoreFailed
	st.ObservedGeneration = ar.Generation
	if st.StartTime == nil {
		st.StartTime = &now
	}
	st.CompletionTime = &now
	setConditions(ar, metav1.ConditionFalse, metav1.ConditionTrue, reason, message)
}

// setResult records how a restore that ran ended: Success when no item
// failed, PartialSuccess when some did, Failed (NothingRestored) when the
// backup held objects and none of them was restored or found in the cluster.
func (r *Reconciler) setResult(ar *backupv1alpha1.ApplicationRestore, res restore.Result, firstErrors []string) {
	summary := fmt.Sprintf("Restored %d of %d objects; %d existed and were left as they are, %d were left out, %d failed (%d warnings)",
		res.Restored, res.Total, res.Skipped, res.Excluded, res.Failed, res.Warnings)
	if len(firstErrors) > 0 {
		summary += ". First errors: " + strings.Join(firstErrors, "; ")
	}
	if res.Total > 0 && res.Restored+res.Skipped == 0 {
		r.setFailed(ar, backupv1alpha1.ReasonNothingRestored, "Nothing was restored: "+summary+
			". The restore's log (status.log) says why for each object")
		return
	}
	now := metav1.NewTime(r.now())
	st := &ar.Status
	st.ObservedGeneration = ar.Generation
	st.CompletionTime = &now
	if res.Errors == 0 {
		st.Phase = backupv1alpha1.RestoreSuccess
		setConditions(ar, metav1.ConditionTrue, metav1.ConditionTrue, backupv1alpha1.ReasonSucceeded, summary)
		return
	}
	st.Phase = backupv1alpha1.RestorePartialSuccess
	msg := fmt.Sprintf("%d errors, each named in the restore's log (status.log). %s", res.Errors, summary)
	if res.Failed > 0 {
		msg = fmt.Sprintf("%d objects could not be restored (%d errors). %s", res.Failed, res.Errors, summary)
	}
	setConditions(ar, metav1.ConditionFalse, metav1.ConditionTrue, backupv1alpha1.ReasonPartiallySucceeded, msg)
}

// setCounts records the counts of res; items once they describe every item.
func setCounts(st *backupv1alpha1.ApplicationRestoreStatus, res restore.Result) {
	st.Progress = &backupv1alpha1.Progress{ItemsTotal: res.Total, ItemsDone: res.Done(), BytesDone: res.Bytes}
	st.Warnings = clamp(res.Warnings)
	st.Errors = clamp(res.Errors)
	st.Items = &backupv1alpha1.RestoreItemCounts{Created: res.Restored - res.Updated, Updated: res.Updated,
		Existed: res.Skipped, LeftOut: res.Excluded, Failed: res.Failed}
}

// noteLogError adds to the Ready and Completed messages that the restore's
// log could not be kept in the bucket.
func noteLogError(ar *backupv1alpha1.ApplicationRestore, err error) {
	if err == nil {
		return
	}
	for i := range ar.Status.Conditions {
		c := &ar.Status.Conditions[i]
		if c.Type == backupv1alpha1.ConditionReady || c.Type == backupv1alpha1.ConditionCompleted {
			c.Message = cut.Bytes(c.Message+". The restore's log could not be kept in the bucket: "+err.Error(), maxMessage)
		}
	}
}

func clamp(n int64) int32 {
	return int32(min(n, math.MaxInt32))
}

// maxMessage keeps condition messages within the API's limit.
const maxMessage = 32 << 10

// setConditions sets Ready and Completed with the same reason and message.
func setConditions(ar *backupv1alpha1.ApplicationRestore, ready, completed metav1.ConditionStatus, reason, message string) {
	message = cut.Bytes(message, maxMessage)
	for typ, status := range map[string]metav1.ConditionStatus{backupv1alpha1.ConditionReady: ready, backupv1alpha1.ConditionCompleted: completed} {
		meta.SetStatusCondition(&ar.Status.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: ar.Generation,
		})
	}
}

// recordPhase emits an event for the phase the restore has just reached.
func (r *Reconciler) recordPhase(ar *backupv1alpha1.ApplicationRestore) {
	if r.Recorder == nil {
		return
	}
	c := meta.FindStatusCondition(ar.Status.Conditions, backupv1alpha1.ConditionReady)
	if c == nil {
		return
	}
	kind := "Normal"
	if ar.Status.Phase == backupv1alpha1.RestoreFailed || ar.Status.Phase == backupv1alpha1.RestorePartialSuccess {
		kind = "Warning"
	}
	r.Recorder.Eventf(ar, nil, kind, c.Reason, "Restore", "%s", c.Message)
}
