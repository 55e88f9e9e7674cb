// Package restore runs each hub Restore as an ApplicationRestore on its
// target cluster (the backup's own or another one, a migration) and mirrors
// the run's progress into the Restore's status.
package restore

import (
	"context"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Kind is the hub kind dispatch labels the ManifestWorks with.
const Kind = "Restore"

// SpokeNamespace is where the hub's ApplicationRestores live on a spoke.
const SpokeNamespace = "lifeboat-system"

const (
	// runningRecheck is how soon a running restore is looked at again, in
	// case a feedback event was missed.
	runningRecheck = 30 * time.Second
	// locationRecheck is how soon a restore waiting for its location's
	// validation on the target cluster is looked at again.
	locationRecheck = 15 * time.Second
)

// Reconciler sends each unfinished hub Restore whose Backup is restorable and
// whose location is Valid on the target cluster to that cluster as an
// ApplicationRestore, fails the others at once, and mirrors the spoke's
// feedback into the Restore's status.
type Reconciler struct {
	client.Client
	// APIReader reads around the cache for the checks before dispatch: a
	// decision to fail at once is final, so it must not rest on a stale
	// cache that has not yet seen a location become Valid.
	APIReader client.Reader
	// Tenancy says what the Restore's namespace may do.
	Tenancy *tenancy.Policy
	// Recorder records each restore's outcome (optional).
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=restores,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=restores/status,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch

// Reconcile leaves finished restores alone. Until the restore is dispatched it
// checks the Backup and the location on the target cluster and sends the
// ApplicationRestore; from then on it only mirrors the work's feedback (the
// Backup may expire or be deleted while the restore runs). One status patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	rs := &fleetv1alpha1.Restore{}
	if err := r.Get(ctx, req.NamespacedName, rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if finished(rs.Status.Phase) || !rs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	base := rs.DeepCopy()
	defer func() {
		if err := r.Status().Patch(ctx, rs, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
			return
		}
		if finished(rs.Status.Phase) {
			run := hubevents.Run{Kind: "Restore", Phase: string(rs.Status.Phase),
				Success: rs.Status.Phase == backupv1alpha1.RestoreSuccess, Cluster: rs.Status.Cluster,
				Start: rs.Status.StartTime, End: rs.Status.CompletionTime, Progress: rs.Status.Progress,
				Warnings: rs.Status.Warnings, Errors: rs.Status.Errors, Conditions: rs.Status.Conditions}
			metrics.Finished(r.Recorder, rs, run)
		}
	}()

	initStatus(rs)
	mw, err := r.sentWork(ctx, rs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if mw == nil {
		src, proceed, err := r.check(ctx, rs)
		if err != nil || !proceed {
			if err == nil && rs.Status.Phase == backupv1alpha1.RestorePending {
				return ctrl.Result{RequeueAfter: wait.Jitter(locationRecheck, 0.1)}, nil
			}
			return ctrl.Result{}, err
		}
		if mw, err = r.dispatchRestore(ctx, rs, src); err != nil {
			return ctrl.Result{}, err
		}
	}
	mirror(rs, mw)
	if !finished(rs.Status.Phase) {
		return ctrl.Result{RequeueAfter: wait.Jitter(runningRecheck, 0.1)}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Restore finished", "phase", rs.Status.Phase, "cluster", rs.Status.Cluster, "itemsDone", itemsDone(rs))
	return ctrl.Result{}, nil
}

// SetupWithManager watches Restores (creation), their ManifestWorks
// (feedback), BackupLocations (a location becoming Valid lets waiting
// restores start) and what decides tenancy.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Restore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.restoreOfWork)).
		Watches(&fleetv1alpha1.BackupLocation{}, handler.EnqueueRequestsFromMapFunc(r.restoresWaiting))
	return tenancy.Watch(b, func(ctx context.Context, ns string) []reconcile.Request {
		return tenancy.Requests(ctx, r, &fleetv1alpha1.RestoreList{}, ns)
	}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("restore").
		Complete(r)
}

// restoreOfWork maps a ManifestWork back to its Restore.
func (r *Reconciler) restoreOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	return dispatch.OwnerOfWork(ctx, r, obj, Kind, &fleetv1alpha1.RestoreList{})
}

// restoresWaiting enqueues the namespace's restores that have not been
// dispatched yet when one of its locations changes; the location is the
// Backup's, so which restores it concerns is left to Reconcile. Finished ones
// stay as they are: a failed restore is final.
func (r *Reconciler) restoresWaiting(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &fleetv1alpha1.RestoreList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list Restores for a location change")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		rs := &list.Items[i]
		if !finished(rs.Status.Phase) && !dispatched(rs) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(rs)})
		}
	}
	return out
}
