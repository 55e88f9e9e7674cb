// Package backup runs each hub Backup as an ApplicationBackup on its cluster
// and mirrors the run's progress into the Backup's status.
package backup

import (
	"context"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
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
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch

// Reconcile leaves finished backups alone; otherwise it checks the location
// (until the backup is dispatched), dispatches the ApplicationBackup, and
// mirrors its feedback, all in one status patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	b := &fleetv1alpha1.Backup{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Deletion (finalizer, BackupDeletion) is not handled here yet.
	if finished(b.Status.Phase) || !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	base := b.DeepCopy()
	defer func() {
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
		}
	}()

	initStatus(b)
	if !dispatched(b) {
		proceed, err := r.checkLocation(ctx, b)
		if err != nil || !proceed {
			if err == nil && b.Status.Phase == fleetv1alpha1.BackupPending {
				return ctrl.Result{RequeueAfter: wait.Jitter(locationRecheck, 0.1)}, nil
			}
			return ctrl.Result{}, err
		}
	}
	mw, err := r.dispatchBackup(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	mirror(b, mw)
	if !finished(b.Status.Phase) {
		return ctrl.Result{RequeueAfter: wait.Jitter(runningRecheck, 0.1)}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Backup finished", "phase", b.Status.Phase, "itemsDone", itemsDone(b))
	return ctrl.Result{}, nil
}

// SetupWithManager watches Backups (creation and spec changes), their
// ManifestWorks (feedback) and BackupLocations (a location becoming Valid
// lets waiting backups start).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Backup{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.backupOfWork)).
		Watches(&fleetv1alpha1.BackupLocation{}, handler.EnqueueRequestsFromMapFunc(r.backupsWaitingFor)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("backup").
		Complete(r)
}

// backupOfWork maps a ManifestWork back to its Backup.
func (r *Reconciler) backupOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	return dispatch.OwnerOfWork(ctx, r, obj, Kind, &fleetv1alpha1.BackupList{})
}

// backupsWaitingFor enqueues the location's backups that have not been
// dispatched yet. Finished ones stay as they are: a failed backup is final.
func (r *Reconciler) backupsWaitingFor(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &fleetv1alpha1.BackupList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list Backups for a location change")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		b := &list.Items[i]
		if string(b.Spec.Location) == obj.GetName() && !finished(b.Status.Phase) && !dispatched(b) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(b)})
		}
	}
	return out
}
