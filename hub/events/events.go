// Package events records the hub's Events: the state changes a person
// cares about, one sentence each.
package events

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
)

// maxNote is the longest note events.k8s.io/v1 accepts (in bytes).
const maxNote = 1024

// Record records an Event of eventtype (corev1.EventTypeNormal or
// EventTypeWarning) about obj, its note cut to what the API accepts; a nil
// recorder records nothing.
func Record(rec events.EventRecorder, obj runtime.Object, eventtype, reason, action, note string) {
	if rec == nil {
		return
	}
	rec.Eventf(obj, nil, eventtype, reason, action, "%s", cut.Bytes(note, maxNote))
}

// Run is what a finished backup or restore reports.
type Run struct {
	// Kind is "Backup" or "Restore"; Phase its final phase.
	Kind, Phase string
	// Success is true for the phase that means everything was done.
	Success          bool
	Cluster          backupv1alpha1.ClusterName
	Start, End       *metav1.Time
	Progress         *backupv1alpha1.Progress
	Warnings, Errors int32
	Conditions       []metav1.Condition
}

// Finished records that a backup or restore ended: reason <Kind><Phase>
// (e.g. BackupSuccess, RestoreFailed), Warning unless it succeeded, and a
// note with the cluster, duration, counts and, when it did not succeed, the
// Ready condition's reason and message.
func Finished(rec events.EventRecorder, obj runtime.Object, r Run) {
	eventtype := corev1.EventTypeNormal
	if !r.Success {
		eventtype = corev1.EventTypeWarning
	}
	Record(rec, obj, eventtype, r.Kind+r.Phase, r.Kind, r.Note())
}

// Note is one sentence about a finished run.
func (r Run) Note() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Cluster != "" { // a restore that failed before choosing its cluster has none
		fmt.Fprintf(&b, " on cluster %s", r.Cluster)
	}
	fmt.Fprintf(&b, " ended %s", r.Phase)
	if r.Start != nil && r.End != nil {
		fmt.Fprintf(&b, " in %s", r.End.Sub(r.Start.Time).Round(time.Second))
	}
	var items, bytes int64
	if r.Progress != nil {
		items, bytes = r.Progress.ItemsDone, r.Progress.BytesDone
		if r.Progress.ItemsTotal > 0 {
			fmt.Fprintf(&b, ": %d of %d items", items, r.Progress.ItemsTotal)
		} else {
			fmt.Fprintf(&b, ": %d items", items)
		}
	} else {
		b.WriteString(": 0 items")
	}
	if bytes > 0 {
		fmt.Fprintf(&b, ", %s", resource.NewQuantity(bytes, resource.BinarySI))
	}
	fmt.Fprintf(&b, ", %d warnings, %d errors", r.Warnings, r.Errors)
	if !r.Success {
		if c := meta.FindStatusCondition(r.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Message != "" {
			fmt.Fprintf(&b, " (%s: %s)", c.Reason, c.Message)
		}
	}
	return b.String()
}
