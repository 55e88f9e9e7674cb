// Package backup runs each hub Backup as an ApplicationBackup on its cluster
// and mirrors the run's progress into the Backup's status.
package backup

import (
	"context"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Kind is the hub kind dispatch labels the ManifestWorks with.
const Kind = "Backup"

// SpokeNamespace is where the hub's ApplicationBackups live on a spoke.
const SpokeNamespace = "lifeboat-system"

const (
	// runningRecheck is how soon a running backup is looked at again, in case
	// a feedback event was missed.
	runningRecheck = 30 * time.Second
	// locationRecheck is how soon a backup waiting for its location's
	// validation on the cluster is looked at again.
	locationRecheck = 15 * time.Second
)

// Reconciler sends each unfinished hub Backup whose location is Valid on its
// cluster to that cluster as an ApplicationBackup, fails the others at once,
// and mirrors the spoke's feedback into the Backup's status.
type Reconciler struct {
	client.Client
	// APIReader reads around the cache for the checks before dispatch: a
	// decision to fail at once is final, so it must not rest on a stale
	// cache that has not yet seen a location become Valid.
	APIReader client.Reader
	// Recorder records deletions and force deletions on the Backup (optional).
	Recorder events.EventRecorder
	// Tenancy says what the Backup's namespace may do.
	Tenancy *tenancy.Policy
	// Clock is the time timeouts are measured with (default: the real clock).
	Clock clock.PassiveClock
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=execrules,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the delete path for a Backup being deleted. Otherwise it
// ensures the finalizer, only expires finished and synced backups (ttl) and
// stops the run of one that timed out, checks the
// location (until the backup is dispatched), dispatches the
// ApplicationBackup, mirrors its feedback and fails it past its timeout, all
// in one status patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	b := &fleetv1alpha1.Backup{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, b)
	}
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		before := b.DeepCopy()
		controllerutil.AddFinalizer(b, Finalizer)
		if err := r.Patch(ctx, b, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	// A synced Backup describes data that exists already: it is never sent
	// to a cluster as a new backup. Finished and synced ones only expire.
	if finished(b.Status.Phase) || synced(b) {
		if err := r.stopTimedOut(ctx, b); err != nil {
			return ctrl.Result{}, err
		}
		return r.expire(ctx, b)
	}

	base := b.DeepCopy()
	defer func() {
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
			return
		}
		if finished(b.Status.Phase) {
			run := hubevents.Run{Kind: "Backup", Phase: string(b.Status.Phase),
				Success: b.Status.Phase == fleetv1alpha1.BackupSuccess, Cluster: b.Spec.Cluster,
				Start: b.Status.StartTime, End: b.Status.CompletionTime, Progress: b.Status.Progress,
				Warnings: b.Status.Warnings, Errors: b.Status.Errors, Conditions: b.Status.Conditions}
			metrics.Finished(r.Recorder, b, run)
		}
	}()

	initStatus(b)
	// Until dispatch a refusal is final: decide on what the API server has.
	policy := r.Tenancy
	if !dispatched(b) {
		policy = policy.Reading(r.APIReader)
	}
	tenant, err := policy.Tenant(ctx, b.Namespace, string(b.Spec.Cluster))
	if err != nil {
		return ctrl.Result{}, err
	}
	if !dispatched(b) {
		proceed, err := r.checkLocation(ctx, b, tenant)
		if err != nil || !proceed {
			if err == nil && b.Status.Phase == fleetv1alpha1.BackupPending {
				return ctrl.Result{RequeueAfter: wait.Jitter(locationRecheck, 0.1)}, nil
			}
			return ctrl.Result{}, err
		}
	}
	mw, err := r.dispatchBackup(ctx, b, tenant)
	if err != nil {
		return ctrl.Result{}, err
	}
	mirror(ctx, b, mw)
	if !finished(b.Status.Phase) {
		timedOut, err := r.timeOut(ctx, b)
		if err != nil || timedOut {
			// Back once the status is written, to stop the run.
			return ctrl.Result{RequeueAfter: time.Second}, err
		}
		return ctrl.Result{RequeueAfter: r.untilDeadline(b, wait.Jitter(runningRecheck, 0.1))}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Backup finished", "phase", b.Status.Phase, "itemsDone", itemsDone(b))
	if b.Spec.TTL != nil {
		return ctrl.Result{RequeueAfter: time.Second}, nil // expire it on the status just written
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches Backups (creation and spec changes), their
// ManifestWorks (feedback), BackupLocations (a location becoming Valid
// lets waiting backups start) and what decides tenancy.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &fleetv1alpha1.Backup{}, indexCluster, backupCluster); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Backup{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted))).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.backupOfWork)).
		Watches(&fleetv1alpha1.BackupLocation{}, handler.EnqueueRequestsFromMapFunc(r.backupsWaitingFor))
	return tenancy.Watch(b, func(ctx context.Context, ns string) []reconcile.Request {
		return tenancy.Requests(ctx, r, &fleetv1alpha1.BackupList{}, ns)
	}).
		// A schedule tick creates one Backup per cluster at once; each
		// dispatch waits on a few API round trips, so run many side by side.
		WithOptions(controller.Options{MaxConcurrentReconciles: 16}).
		Named("backup").
		Complete(r)
}

// backupOfWork maps a ManifestWork (ApplicationBackup or BackupDeletion) back to its Backup.
func (r *Reconciler) backupOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetLabels()[dispatch.LabelKind] == DeletionKind {
		return dispatch.OwnerOfWork(ctx, r, obj, DeletionKind, &fleetv1alpha1.BackupList{})
	}
	return dispatch.OwnerOfWork(ctx, r, obj, Kind, &fleetv1alpha1.BackupList{})
}

// deletionStarted lets through the update that sets a Backup's deletionTimestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// synced is true for a Backup that a sync imported (see SyncOriginLabel).
func synced(b *fleetv1alpha1.Backup) bool {
	return b.Labels[fleetv1alpha1.SyncOriginLabel] == fleetv1alpha1.SyncOriginValue
}

// backupsWaitingFor enqueues the location's backups that have not been
// dispatched yet, and those being deleted (a cluster turning Valid lets a
// pending deletion proceed). Finished ones stay as they are: a failed backup
// is final.
func (r *Reconciler) backupsWaitingFor(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &fleetv1alpha1.BackupList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list Backups for a location change")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		b := &list.Items[i]
		waiting := !finished(b.Status.Phase) && !dispatched(b) && !synced(b)
		if string(b.Spec.Location) == obj.GetName() && (waiting || !b.DeletionTimestamp.IsZero()) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(b)})
		}
	}
	return out
}
