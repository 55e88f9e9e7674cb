package backupschedule

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
)

// defaultRetryDelay is the delay of a retry policy that sets none (the API
// server defaults it too).
const defaultRetryDelay = 5 * time.Minute

// retryFailed makes, for each allowed cluster, the next attempt of its latest
// run when that run's latest attempt Failed, fewer than maxRetry retries were
// made, and the delay has passed since it failed (its completion time). A run
// with a later run is not retried. It returns when the earliest retry still
// waiting for its delay is due (zero: none).
func (r *Reconciler) retryFailed(ctx context.Context, s *fleetv1alpha1.BackupSchedule, allowed []string, runs map[string][]scheduled, now time.Time) (time.Time, error) {
	rp := s.Spec.Retry
	if rp == nil {
		return time.Time{}, nil
	}
	delay := defaultRetryDelay
	if rp.Delay != nil {
		delay = rp.Delay.Duration
	}
	var next time.Time
	var made []string
	var err error
	for _, c := range allowed {
		rs := runs[c]
		if len(rs) == 0 || rs[0].phase != fleetv1alpha1.BackupFailed {
			continue
		}
		last := rs[0].backup
		attempt := attemptOf(last)
		if attempt >= int(rp.MaxRetry) {
			continue
		}
		failedAt := last.CreationTimestamp.Time
		if last.Status.CompletionTime != nil {
			failedAt = last.Status.CompletionTime.Time
		}
		if due := failedAt.Add(delay); now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		b := retryBackup(s, last, rs[0].tick, attempt+1)
		cerr := r.Create(ctx, b)
		if cerr != nil && !apierrors.IsAlreadyExists(cerr) {
			err = fmt.Errorf("creating Backup %s to retry %s of cluster %s: %w", b.Name, last.Name, c, cerr)
			break
		}
		runs[c] = append([]scheduled{{run: run{name: b.Name, tick: rs[0].tick}, backup: b}}, rs...)
		if cerr == nil { // one that exists was made and reported by a reconcile the cache has not seen
			made = append(made, fmt.Sprintf("%s (attempt %d of %d retries, after %s failed)", b.Name, attempt+1, rp.MaxRetry, last.Name))
		}
	}
	if len(made) > 0 {
		metrics.Retried(s.Namespace, s.Name, len(made))
		sort.Strings(made)
		msg := fmt.Sprintf("Retrying failed runs: created %s", abbreviate(made, 20))
		ctrl.LoggerFrom(ctx).Info(msg)
		hubevents.Record(r.Recorder, s, corev1.EventTypeNormal, "RetryRun", "Retry", msg)
	}
	return next, err
}

// retryBackup is attempt n of the run that failed's Backup belongs to: the
// run's Backup name with "-r<n>", the run's labels and time, and the
// schedule's template as it is now.
func retryBackup(s *fleetv1alpha1.BackupSchedule, failed *fleetv1alpha1.Backup, tick time.Time, n int) *fleetv1alpha1.Backup {
	first := failed.Labels[fleetv1alpha1.LabelRetryOf]
	if first == "" {
		first = failed.Name
	}
	b := newBackup(s, string(failed.Spec.Cluster), tick)
	b.Name = fmt.Sprintf("%s-r%d", first, n)
	b.Labels[fleetv1alpha1.LabelRetryOf] = first
	b.Labels[fleetv1alpha1.LabelAttempt] = strconv.Itoa(n)
	return b
}

// attemptOf is the retry a Backup is: 0 for a run's first Backup.
func attemptOf(b *fleetv1alpha1.Backup) int {
	n, err := strconv.Atoi(b.Labels[fleetv1alpha1.LabelAttempt])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
