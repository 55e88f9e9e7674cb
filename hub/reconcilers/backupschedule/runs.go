package backupschedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/placement"
)

// plan reads the schedule's policy and makes its plan; nil, with the Ready
// condition saying why, when the policy is missing or cannot be used.
func (r *Reconciler) plan(ctx context.Context, s *fleetv1alpha1.BackupSchedule) (*Plan, *fleetv1alpha1.Retention, error) {
	pol := &fleetv1alpha1.SchedulePolicy{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: string(s.Spec.Policy)}, pol)
	if apierrors.IsNotFound(err) {
		notReady(s, fleetv1alpha1.ReasonPolicyNotFound, fmt.Sprintf(
			"SchedulePolicy %q does not exist in namespace %s; no backups are made until it does", s.Spec.Policy, s.Namespace))
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	plan, err := NewPlan(pol.Spec, s.CreationTimestamp.Time)
	if err != nil {
		notReady(s, fleetv1alpha1.ReasonInvalidSchedule, fmt.Sprintf(
			"SchedulePolicy %q cannot be used: %v; no backups are made until it is fixed", s.Spec.Policy, err))
		return nil, nil, nil
	}
	return plan, pol.Spec.Retention, nil
}

// selectedClusters are the names of the managed BackupClusters the schedule's
// clusterSelector selects or its placementRef's Placement decides for, sorted.
func (r *Reconciler) selectedClusters(ctx context.Context, s *fleetv1alpha1.BackupSchedule) ([]string, error) {
	sel := labels.Everything()
	if s.Spec.ClusterSelector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(s.Spec.ClusterSelector); err != nil {
			msg := fmt.Sprintf("clusterSelector: %v", err)
			notReady(s, fleetv1alpha1.ReasonInvalidSelector, msg)
			return nil, reconcile.TerminalError(fmt.Errorf("%s", msg))
		}
	}
	var decided sets.Set[string]
	if ref := s.Spec.PlacementRef; ref != nil {
		d, found, err := placement.Decided(ctx, r, s.Namespace, string(ref.Name))
		if err != nil {
			return nil, err
		}
		if !found {
			msg := placement.NotFoundMessage(s.Namespace, string(ref.Name)) + "; no backups are made until it exists"
			notReady(s, fleetv1alpha1.ReasonPlacementNotFound, msg)
			return nil, reconcile.TerminalError(errors.New(msg))
		}
		decided = d
	}
	list := &fleetv1alpha1.BackupClusterList{}
	if err := r.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	var names []string
	for _, c := range list.Items {
		if c.Spec.Managed && c.DeletionTimestamp.IsZero() && (decided == nil || decided.Has(c.Name)) {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// selection is which selected clusters the schedule's namespace may use and
// the template's location allows.
type selection struct {
	clusters []string
	allowed  []string
	refused  []string
	// notBound are the selected clusters the namespace may not use; bindings
	// says why.
	notBound []string
	bindings string
	// usable is false when the location does not exist or the template asks
	// for more than the namespace's grant: nothing is created.
	usable bool
}

// allowedClusters splits the selected clusters into those the template's
// location allows and those it does not select. A location that is not Valid
// on a cluster does not stop the run: the Backup fails at once with the
// cluster's reason, which the schedule's status then shows.
func (r *Reconciler) allowedClusters(ctx context.Context, s *fleetv1alpha1.BackupSchedule, clusters []string) (selection, error) {
	sel := selection{clusters: clusters}
	tenant, err := r.Tenancy.Tenant(ctx, s.Namespace)
	if err != nil {
		return sel, err
	}
	if refused := tenant.BackupSelection(s.Spec.Template.Selection); refused != nil {
		notReady(s, refused.Reason, "no backups are made: "+refused.Message)
		return sel, nil
	}
	var bound []string
	for _, c := range clusters {
		if refused := tenant.Cluster(c); refused != nil {
			sel.notBound, sel.bindings = append(sel.notBound, c), refused.Message
			continue
		}
		bound = append(bound, c)
	}
	loc := &fleetv1alpha1.BackupLocation{}
	err = r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: string(s.Spec.Template.Location)}, loc)
	if apierrors.IsNotFound(err) {
		notReady(s, fleetv1alpha1.ReasonLocationNotFound, fmt.Sprintf(
			"BackupLocation %q does not exist in namespace %s; no backups are made until it does", s.Spec.Template.Location, s.Namespace))
		return sel, nil
	}
	if err != nil {
		return sel, err
	}
	sel.usable = true
	for _, c := range bound {
		v, err := locations.Of(ctx, r, loc, c)
		if err != nil {
			return sel, err
		}
		if v.State == locations.Unusable && v.Reason == fleetv1alpha1.ReasonClusterNotAllowed {
			sel.refused = append(sel.refused, c)
			continue
		}
		sel.allowed = append(sel.allowed, c)
	}
	return sel, nil
}

// scheduled is one Backup of the schedule.
type scheduled struct {
	run
	backup *fleetv1alpha1.Backup
}

// scheduledBackups are the schedule's Backups by cluster, newest run first;
// Backups being deleted are left out.
func (r *Reconciler) scheduledBackups(ctx context.Context, s *fleetv1alpha1.BackupSchedule) (map[string][]scheduled, error) {
	list := &fleetv1alpha1.BackupList{}
	if err := r.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{fleetv1alpha1.LabelSchedule: s.Name}); err != nil {
		return nil, err
	}
	out := map[string][]scheduled{}
	for i := range list.Items {
		b := &list.Items[i]
		if !b.DeletionTimestamp.IsZero() {
			continue
		}
		c := string(b.Spec.Cluster)
		out[c] = append(out[c], scheduled{run: run{name: b.Name, tick: tickOf(b), phase: b.Status.Phase}, backup: b})
	}
	for _, runs := range out {
		sort.Slice(runs, func(i, j int) bool {
			if !runs[i].tick.Equal(runs[j].tick) {
				return runs[i].tick.After(runs[j].tick)
			}
			return runs[i].name > runs[j].name
		})
	}
	return out, nil
}

// tickOf is the run a scheduled Backup was made for.
func tickOf(b *fleetv1alpha1.Backup) time.Time {
	if t, err := time.Parse(time.RFC3339, b.Annotations[fleetv1alpha1.AnnotationScheduledTime]); err == nil {
		return t
	}
	return b.CreationTimestamp.Time
}

// due is what one reconcile does for one cluster.
type due struct {
	cluster string
	offset  time.Duration
	// create is the run to make a Backup for now; zero for none.
	create time.Time
	// next is when the cluster's next Backup is due, jitter included.
	next time.Time
	// skipped is the run skipped for the cluster now (see gate); zero for none.
	skipped time.Time
}

// dueRuns decides, for each allowed cluster, whether a Backup is due now and
// when the next one is. Only the latest run counts: runs missed while the hub
// was down are caught up once, by that run. A cluster is due at its offset in
// the run's jitter window. A run is done for a cluster when it has a Backup
// of it or a later one, when the status records a later run or skipped
// this one or a later one, and, for a
// cluster never backed up, when the run is before the first one the status
// promised it (its nextRunTime) or, without one, started before the cluster
// was selected and allowed. status is the schedule's status before this
// reconcile.
func dueRuns(ns, name string, status *fleetv1alpha1.BackupScheduleStatus, plan *Plan, allowed []string, runs map[string][]scheduled, now time.Time) []due {
	latest := plan.Latest(now)
	known := map[string]*fleetv1alpha1.ScheduledCluster{}
	for i := range status.Clusters {
		known[status.Clusters[i].Cluster] = &status.Clusters[i]
	}
	out := make([]due, 0, len(allowed))
	for _, c := range allowed {
		d := due{cluster: c, offset: plan.Offset(ns, name, c)}
		done := func(t time.Time) bool {
			if rs := runs[c]; len(rs) > 0 && !rs[0].tick.Before(t) {
				return true
			}
			k := known[c]
			if k != nil && k.LastSkippedTime != nil && !k.LastSkippedTime.Time.Before(t) {
				return true
			}
			if k != nil && k.LastRunTime != nil {
				return !k.LastRunTime.Time.Before(t)
			}
			if k != nil && k.NextRunTime != nil {
				// Never backed up yet: its first run is the one the status promised.
				return k.NextRunTime.Time.After(t.Add(d.offset))
			}
			// Selected (or allowed by the location) after the run started:
			// it joins at the next one.
			return status.LastScheduleTime != nil && !status.LastScheduleTime.Time.Before(t)
		}
		switch {
		case latest.IsZero():
			d.next = plan.Next(now).Add(d.offset)
		case done(latest):
			d.next = plan.Next(latest).Add(d.offset)
		case now.Before(latest.Add(d.offset)):
			d.next = latest.Add(d.offset)
		default:
			d.create = latest
			d.next = plan.Next(latest).Add(d.offset)
		}
		out = append(out, d)
	}
	return out
}

// newBackup is the Backup schedule s makes of cluster for the run at tick.
func newBackup(s *fleetv1alpha1.BackupSchedule, cluster string, tick time.Time) *fleetv1alpha1.Backup {
	return &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace,
			Name:      BackupName(s.Name, cluster, tick),
			Labels:    map[string]string{fleetv1alpha1.LabelSchedule: s.Name, fleetv1alpha1.LabelCluster: cluster},
			Annotations: map[string]string{
				fleetv1alpha1.AnnotationScheduledTime: tick.UTC().Format(time.RFC3339),
			},
		},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: *s.Spec.Template.DeepCopy(),
		},
	}
}

// createDueBackups creates the Backups that are due. One that exists already
// (a hub restarted after creating it) counts as created.
func (r *Reconciler) createDueBackups(ctx context.Context, s *fleetv1alpha1.BackupSchedule, dues []due, runs map[string][]scheduled) error {
	var mu sync.Mutex
	var created []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.workers())
	for _, d := range dues {
		if d.create.IsZero() {
			continue
		}
		g.Go(func() error {
			b := newBackup(s, d.cluster, d.create)
			if err := r.Create(gctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating Backup %s of cluster %s: %w", b.Name, d.cluster, err)
			}
			mu.Lock()
			defer mu.Unlock()
			runs[d.cluster] = append([]scheduled{{run: run{name: b.Name, tick: d.create, phase: b.Status.Phase}, backup: b}}, runs[d.cluster]...)
			created = append(created, d.cluster)
			return nil
		})
	}
	err := g.Wait()
	if len(created) > 0 {
		sort.Strings(created)
		ctrl.LoggerFrom(ctx).Info("Created scheduled backups", "count", len(created), "clusters", abbreviate(created, 5))
		hubevents.Record(r.Recorder, s, corev1.EventTypeNormal, "ScheduleRun", "Schedule",
			fmt.Sprintf("Created %s, on clusters %s", countBackups(len(created)), abbreviate(created, 20)))
	}
	return err
}

// applyRetention deletes, per cluster, the finished Backups the policy's
// retention does not keep, and then those beyond the schedule's history
// limits, through the normal delete of a hub Backup.
func (r *Reconciler) applyRetention(ctx context.Context, s *fleetv1alpha1.BackupSchedule, retention *fleetv1alpha1.Retention, plan *Plan, runs map[string][]scheduled) error {
	byRetention := func(list []run) []string { return expired(list, retention, plan.Location()) }
	byLimits := func(list []run) []string {
		return overLimits(list, s.Spec.SuccessfulHistoryLimit, s.Spec.FailedHistoryLimit)
	}
	return kerrors.NewAggregate([]error{
		r.deleteRuns(ctx, s, runs, byRetention, "RetentionDeleted", "Retention", "retention does not keep"),
		r.deleteRuns(ctx, s, runs, byLimits, "HistoryLimitDeleted", "HistoryLimit", "are beyond the schedule's history limits"),
	})
}

// deleteRuns deletes, per cluster, the Backups pick picks among its runs,
// drops them from runs and records one Event for them all.
func (r *Reconciler) deleteRuns(ctx context.Context, s *fleetv1alpha1.BackupSchedule, runs map[string][]scheduled,
	pick func([]run) []string, reason, action, why string) error {
	var mu sync.Mutex
	var deleted []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.workers())
	for cluster, rs := range runs {
		list := make([]run, len(rs))
		byName := map[string]*fleetv1alpha1.Backup{}
		for i := range rs {
			list[i] = rs[i].run
			byName[rs[i].name] = rs[i].backup
		}
		for _, name := range pick(list) {
			b := byName[name]
			g.Go(func() error {
				if err := r.Delete(gctx, b, client.Preconditions{UID: &b.UID}); client.IgnoreNotFound(err) != nil {
					return fmt.Errorf("deleting Backup %s of cluster %s (%s): %w", name, cluster, why, err)
				}
				mu.Lock()
				defer mu.Unlock()
				deleted = append(deleted, name)
				return nil
			})
		}
	}
	err := g.Wait()
	if len(deleted) == 0 {
		return err
	}
	dropRuns(runs, deleted)
	sort.Strings(deleted)
	ctrl.LoggerFrom(ctx).Info("Deleted scheduled backups", "why", why, "count", len(deleted), "backups", abbreviate(deleted, 5))
	hubevents.Record(r.Recorder, s, corev1.EventTypeNormal, reason, action,
		fmt.Sprintf("Deleted %s that %s: %s", countBackups(len(deleted)), why, abbreviate(deleted, 20)))
	return err
}

// dropRuns removes the named Backups from runs.
func dropRuns(runs map[string][]scheduled, names []string) {
	gone := map[string]bool{}
	for _, n := range names {
		gone[n] = true
	}
	for c, rs := range runs {
		kept := rs[:0]
		for _, x := range rs {
			if !gone[x.name] {
				kept = append(kept, x)
			}
		}
		runs[c] = kept
	}
}

// countBackups is "1 Backup" or "n Backups".
func countBackups(n int) string {
	if n == 1 {
		return "1 Backup"
	}
	return fmt.Sprintf("%d Backups", n)
}

// abbreviate lists up to n names and how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
