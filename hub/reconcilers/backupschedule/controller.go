// Package backupschedule backs up every cluster a BackupSchedule selects at
// each run of its SchedulePolicy, and deletes the backups the policy's
// retention no longer keeps.
package backupschedule

import (
	"context"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/placement"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Reconciler creates, at each run of a BackupSchedule's policy, one Backup
// per selected cluster (each at its place in the jitter window), applies
// retention per cluster, and reports the runs in the schedule's status.
type Reconciler struct {
	client.Client
	// Clock tells the time (default: the real one); tests move it.
	Clock clock.PassiveClock
	// Workers is how many Backups one reconcile creates or deletes at once (default 16).
	Workers int
	// Tenancy says which clusters and spoke namespaces the schedule's namespace may use.
	Tenancy *tenancy.Policy
	// Recorder records each run and each retention deletion on the schedule (optional).
	Recorder events.EventRecorder
	// APIReader reads the schedule around the cache, so that a run skipped
	// by a reconcile whose status the cache has not seen yet is not reported
	// twice (default: the manager's).
	APIReader client.Reader
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupschedules,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupschedules/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=schedulepolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reads the policy and the selected clusters, creates the Backups
// that are due, deletes those retention no longer keeps, and writes the
// status in one patch; it comes back when the next Backup is due.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	s := &fleetv1alpha1.BackupSchedule{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := s.DeepCopy()
	defer func() {
		if err := r.Status().Patch(ctx, s, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
		}
	}()

	now := r.clock().Now()
	initStatus(s)
	plan, retention, err := r.plan(ctx, s)
	if err != nil || plan == nil {
		return ctrl.Result{}, err
	}
	clusters, err := r.selectedClusters(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	runs, err := r.scheduledBackups(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	sel, err := r.allowedClusters(ctx, s, clusters)
	if err != nil {
		return ctrl.Result{}, err
	}
	dues := dueRuns(s.Namespace, s.Name, &base.Status, plan, sel.allowed, runs, now)
	var errs []error
	var retryAt time.Time
	if !s.Spec.Suspend && sel.usable {
		errs = append(errs, r.gate(ctx, s, dues, runs, now), r.createDueBackups(ctx, s, dues, runs))
		var err error
		retryAt, err = r.retryFailed(ctx, s, sel.allowed, runs, now)
		errs = append(errs, err)
	}
	errs = append(errs, r.applyRetention(ctx, s, retention, plan, runs))
	summarize(s, plan, sel, dues, runs, now)
	if err := kerrors.NewAggregate(errs); err != nil {
		return ctrl.Result{}, err
	}
	after := r.untilNextDue(s, now)
	if !retryAt.IsZero() && (after == 0 || retryAt.Sub(now) < after) {
		after = max(retryAt.Sub(now)+100*time.Millisecond, time.Second)
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// untilNextDue is how long until the earliest nextRunTime of the status.
func (r *Reconciler) untilNextDue(s *fleetv1alpha1.BackupSchedule, now time.Time) time.Duration {
	if s.Spec.Suspend {
		return 0
	}
	var next time.Time
	if s.Status.NextScheduleTime != nil {
		next = s.Status.NextScheduleTime.Time
	}
	for _, c := range s.Status.Clusters {
		if c.NextRunTime != nil && (next.IsZero() || c.NextRunTime.Time.Before(next)) {
			next = c.NextRunTime.Time
		}
	}
	if next.IsZero() {
		return 0
	}
	// A little late rather than early: the run is due at next, not before.
	d := next.Sub(now) + 100*time.Millisecond
	if d < time.Second {
		d = time.Second
	}
	return d
}

// SetupWithManager watches BackupSchedules (spec and annotation changes: an
// annotation change makes the hub look again at once), their SchedulePolicies,
// BackupClusters (a cluster onboarded later is backed up from the next run),
// BackupLocations (which clusters a template's location allows) and the
// scheduled Backups' phases (retention counts finished backups), Placements
// and their decisions, and what decides tenancy.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupSchedule{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&fleetv1alpha1.SchedulePolicy{}, handler.EnqueueRequestsFromMapFunc(r.schedulesOfPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&fleetv1alpha1.BackupCluster{}, handler.EnqueueRequestsFromMapFunc(r.allSchedules),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&fleetv1alpha1.BackupLocation{}, handler.EnqueueRequestsFromMapFunc(r.schedulesOfLocation)).
		Watches(&fleetv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(scheduleOfBackup),
			builder.WithPredicates(backupPhaseChanged()))
	inNamespace := func(ctx context.Context, ns string) []reconcile.Request {
		return tenancy.Requests(ctx, r, &fleetv1alpha1.BackupScheduleList{}, ns)
	}
	return placement.Watch(tenancy.Watch(b, inNamespace), inNamespace).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("backupschedule").
		Complete(r)
}

func (r *Reconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

func (r *Reconciler) workers() int {
	if r.Workers > 0 {
		return r.Workers
	}
	return 16
}

// scheduleOfBackup maps a scheduled Backup to its BackupSchedule.
func scheduleOfBackup(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[fleetv1alpha1.LabelSchedule]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}}}
}

// backupPhaseChanged passes scheduled Backups that appear, go, or change
// phase, not every progress update.
func backupPhaseChanged() predicate.Predicate {
	scheduled := func(o client.Object) bool { return o.GetLabels()[fleetv1alpha1.LabelSchedule] != "" }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return scheduled(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return scheduled(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*fleetv1alpha1.Backup)
			n, ok2 := e.ObjectNew.(*fleetv1alpha1.Backup)
			return ok1 && ok2 && scheduled(n) && (o.Status.Phase != n.Status.Phase || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero())
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// schedulesOfPolicy enqueues the schedules in the policy's namespace that use it.
func (r *Reconciler) schedulesOfPolicy(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.schedulesWhere(ctx, obj.GetNamespace(), func(s *fleetv1alpha1.BackupSchedule) bool {
		return string(s.Spec.Policy) == obj.GetName()
	})
}

// schedulesOfLocation enqueues the schedules whose template writes to the location.
func (r *Reconciler) schedulesOfLocation(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.schedulesWhere(ctx, obj.GetNamespace(), func(s *fleetv1alpha1.BackupSchedule) bool {
		return string(s.Spec.Template.Location) == obj.GetName()
	})
}

// allSchedules enqueues every schedule: any may select a cluster that changed.
func (r *Reconciler) allSchedules(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.schedulesWhere(ctx, "", func(*fleetv1alpha1.BackupSchedule) bool { return true })
}

func (r *Reconciler) schedulesWhere(ctx context.Context, namespace string, match func(*fleetv1alpha1.BackupSchedule) bool) []reconcile.Request {
	list := &fleetv1alpha1.BackupScheduleList{}
	if err := r.List(ctx, list, client.InNamespace(namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list BackupSchedules")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if match(&list.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}
