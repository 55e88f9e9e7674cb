package dispatch

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// RunFields are the feedback fields every spoke run (an ApplicationBackup or
// an ApplicationRestore) reports: phase, progress, counts, times, and its
// Ready condition. The work agent reads paths with client-go's JSONPath,
// which has filters.
var RunFields = []Field{
	{Name: "phase", Path: ".status.phase"},
	{Name: "itemsTotal", Path: ".status.progress.itemsTotal"},
	{Name: "itemsDone", Path: ".status.progress.itemsDone"},
	{Name: "bytesDone", Path: ".status.progress.bytesDone"},
	{Name: "warnings", Path: ".status.warnings"},
	{Name: "errors", Path: ".status.errors"},
	{Name: "startTime", Path: ".status.startTime"},
	{Name: "completionTime", Path: ".status.completionTime"},
	{Name: "observedGeneration", Path: ".status.observedGeneration"},
	{Name: "readyStatus", Path: `.status.conditions[?(@.type=="Ready")].status`},
	{Name: "readyReason", Path: `.status.conditions[?(@.type=="Ready")].reason`},
	{Name: "readyMessage", Path: `.status.conditions[?(@.type=="Ready")].message`},
}

// Run is what a spoke run fed back through RunFields.
type Run struct {
	Phase string
	// Progress is nil when no progress was fed back.
	Progress         *backupv1alpha1.Progress
	Warnings, Errors int32
	// StartTime and CompletionTime are nil when missing or unreadable.
	StartTime, CompletionTime *metav1.Time
	// Ready is the run's Ready condition; when the spoke reported none, it is
	// True while the run is InProgress or ended in Success, False otherwise,
	// and Reason is the phase. Message may be empty.
	Ready           metav1.ConditionStatus
	Reason, Message string
}

// ReadRun reads a run from feedback that Feedback accepted. ok is false when
// no phase was fed back, or when the spoke's status does not yet describe the
// spoke object that was read (its observedGeneration lags): then the hub keeps
// the status it has.
func ReadRun(st Status) (Run, bool) {
	v := st.Values
	phase := v["phase"].String
	if og, ok := v["observedGeneration"]; phase == "" || !ok || og.Int != st.ObjectGeneration {
		return Run{}, false
	}
	r := Run{
		Phase:          phase,
		Warnings:       int32(v["warnings"].Int),
		Errors:         int32(v["errors"].Int),
		StartTime:      Time(v["startTime"]),
		CompletionTime: Time(v["completionTime"]),
		Ready:          metav1.ConditionStatus(v["readyStatus"].String),
		Reason:         v["readyReason"].String,
		Message:        v["readyMessage"].String,
	}
	_, total := v["itemsTotal"]
	_, done := v["itemsDone"]
	_, bytes := v["bytesDone"]
	if total || done || bytes {
		r.Progress = &backupv1alpha1.Progress{ItemsTotal: v["itemsTotal"].Int, ItemsDone: v["itemsDone"].Int, BytesDone: v["bytesDone"].Int}
	}
	if r.Ready == "" {
		r.Ready = metav1.ConditionFalse
		if phase == "InProgress" || phase == "Success" {
			r.Ready = metav1.ConditionTrue
		}
	}
	if r.Reason == "" {
		r.Reason = phase
	}
	return r, true
}

// Time is a fed-back RFC 3339 time, or nil when it is missing or unreadable.
func Time(v Value) *metav1.Time {
	if v.Type != workv1.String || v.String == "" {
		return nil
	}
	parsed, err := time.Parse(time.RFC3339, v.String)
	if err != nil {
		return nil
	}
	return &metav1.Time{Time: parsed}
}
