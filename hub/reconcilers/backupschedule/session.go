package backupschedule

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
)

// unfinished is true for a scheduled Backup whose run has not finished.
func unfinished(p fleetv1alpha1.BackupPhase) bool {
	return p == "" || p == fleetv1alpha1.BackupPending || p == fleetv1alpha1.BackupInProgress
}

// gate applies the schedule's startingDeadline and concurrencyPolicy to the
// runs due now. A run due for a cluster longer ago than startingDeadline is
// skipped; so is one for a cluster with a running Backup of the schedule
// under Forbid. Under Replace the running Backups are deleted (the normal
// delete stops their runs) before the new one is created. A skipped run's
// due has create cleared and skipped set, which the status records.
func (r *Reconciler) gate(ctx context.Context, s *fleetv1alpha1.BackupSchedule, dues []due, runs map[string][]scheduled, now time.Time) error {
	var late, busy, replaced []string
	var tick time.Time
	var errs []error
	var recorded map[string]time.Time
	// skip skips d's run and says whether it is news: the live status may
	// record it already, written by a reconcile the cache has not seen.
	skip := func(d *due) bool {
		d.skipped, d.create = d.create, time.Time{}
		if recorded == nil {
			recorded = r.skippedRuns(ctx, s)
		}
		return recorded[d.cluster].Before(d.skipped)
	}
	for i := range dues {
		d := &dues[i]
		if d.create.IsZero() {
			continue
		}
		tick = d.create
		if dl := s.Spec.StartingDeadline; dl != nil && now.Sub(d.create.Add(d.offset)) > dl.Duration {
			if skip(d) {
				late = append(late, d.cluster)
			}
			continue
		}
		var active []scheduled
		for _, x := range runs[d.cluster] {
			if unfinished(x.phase) {
				active = append(active, x)
			}
		}
		if len(active) == 0 {
			continue
		}
		switch s.Spec.ConcurrencyPolicy {
		case fleetv1alpha1.ConcurrencyForbid:
			if skip(d) {
				busy = append(busy, fmt.Sprintf("%s (%s)", d.cluster, active[0].name))
			}
		case fleetv1alpha1.ConcurrencyReplace:
			var gone []string
			for _, x := range active {
				b := x.backup
				if err := r.Delete(ctx, b, client.Preconditions{UID: &b.UID}); client.IgnoreNotFound(err) != nil {
					errs = append(errs, fmt.Errorf("deleting running Backup %s of cluster %s to replace it: %w", b.Name, d.cluster, err))
					continue
				}
				gone = append(gone, b.Name)
			}
			if len(gone) < len(active) {
				d.create = time.Time{} // not beside a run it could not replace; tried again
			}
			dropRuns(runs, gone)
			replaced = append(replaced, gone...)
		}
	}
	at := tick.UTC().Format(time.RFC3339)
	if len(late) > 0 {
		metrics.Skipped(s.Namespace, s.Name, "StartingDeadline", len(late))
		sort.Strings(late)
		r.skipEvent(ctx, s, fmt.Sprintf("Skipped the run of %s on clusters %s: it was due more than its startingDeadline of %s ago",
			at, abbreviate(late, 20), s.Spec.StartingDeadline.Duration))
	}
	if len(busy) > 0 {
		metrics.Skipped(s.Namespace, s.Name, "ConcurrencyForbid", len(busy))
		sort.Strings(busy)
		r.skipEvent(ctx, s, fmt.Sprintf("Skipped the run of %s on clusters %s: the Backup of an earlier run is still running (concurrencyPolicy Forbid)",
			at, abbreviate(busy, 20)))
	}
	if len(replaced) > 0 {
		sort.Strings(replaced)
		msg := fmt.Sprintf("Replaced %s still running with the run of %s (concurrencyPolicy Replace): %s",
			countBackups(len(replaced)), at, abbreviate(replaced, 20))
		ctrl.LoggerFrom(ctx).Info(msg)
		hubevents.Record(r.Recorder, s, corev1.EventTypeNormal, "RunReplaced", "Schedule", msg)
	}
	return kerrors.NewAggregate(errs)
}

// skippedRuns are the runs the live schedule's status records skipped, by
// cluster; none when it cannot be read (the skip is then reported again
// rather than not at all).
func (r *Reconciler) skippedRuns(ctx context.Context, s *fleetv1alpha1.BackupSchedule) map[string]time.Time {
	out := map[string]time.Time{}
	live := &fleetv1alpha1.BackupSchedule{}
	if r.APIReader == nil || r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), live) != nil || live.UID != s.UID {
		return out
	}
	for _, c := range live.Status.Clusters {
		if c.LastSkippedTime != nil {
			out[c.Cluster] = c.LastSkippedTime.Time
		}
	}
	return out
}

func (r *Reconciler) skipEvent(ctx context.Context, s *fleetv1alpha1.BackupSchedule, msg string) {
	ctrl.LoggerFrom(ctx).Info(msg)
	hubevents.Record(r.Recorder, s, corev1.EventTypeWarning, "RunSkipped", "Schedule", msg)
}
