// Package backuplocation puts a BackupTarget for each BackupLocation on every
// cluster it selects and sums up, in the location's status, on how many
// clusters it is valid and why not on the others. Each cluster's own
// connection is its BackupTarget ManifestWork's feedback (hub/locations).
package backuplocation

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
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
	"github.com/lifeboat-dev/lifeboat/hub/placement"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Finalizer lets a deleted BackupLocation remove its BackupTargets first.
const Finalizer = "fleet.lifeboat.dev/backup-location"

// pendingRecheck is how soon a location with clusters still validating is
// looked at again, in case a feedback event was missed.
const pendingRecheck = 30 * time.Second

// Reconciler keeps one BackupTarget ManifestWork per cluster a BackupLocation
// selects, removes those of clusters no longer selected, and sums up the
// clusters' validation feedback in the location's status.
type Reconciler struct {
	client.Client
	// Workers is how many ManifestWorks one reconcile writes at once (default 16).
	Workers int
	// Tenancy says which clusters the location's namespace may use.
	Tenancy *tenancy.Policy
	// Recorder records changes of validity (optional).
	Recorder events.EventRecorder
	// StatusInterval is the least time between two status writes of one
	// location (default DefaultStatusInterval).
	StatusInterval time.Duration

	// lastWrite is when each location's status was last written.
	lastWrite sync.Map
}

// DefaultStatusInterval is the least time between two status writes of one
// location: with thousands of clusters reporting, their reports are
// summed up in one write per interval.
const DefaultStatusInterval = 2 * time.Second

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile refuses a location that would share storage with another
// namespace, then dispatches a BackupTarget to every selected cluster that the
// namespace may use, prunes the rest, and reports the clusters' feedback (and
// the clusters refused) in one status patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, req.NamespacedName, loc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !loc.DeletionTimestamp.IsZero() {
		r.lastWrite.Delete(req.NamespacedName)
		return ctrl.Result{}, r.reconcileDelete(ctx, loc)
	}
	if !controllerutil.ContainsFinalizer(loc, Finalizer) {
		before := loc.DeepCopy()
		controllerutil.AddFinalizer(loc, Finalizer)
		if err := r.Patch(ctx, loc, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := loc.DeepCopy()
	var conns []fleetv1alpha1.ClusterConnection
	defer func() {
		if wait, err := r.writeStatus(ctx, base, loc, conns); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		} else if wait > 0 && retErr == nil && (result.RequeueAfter == 0 || wait < result.RequeueAfter) {
			result = ctrl.Result{RequeueAfter: wait}
		}
	}()

	// What the location's identities must federate, whatever the clusters say.
	loc.Status.FederatedSubject = FederatedSubject(loc.Namespace, loc.Name)
	if refused, err := r.refuseConflict(ctx, loc); err != nil || refused {
		return ctrl.Result{}, err
	}
	selected, identities, err := r.selectedClusters(ctx, loc)
	if err != nil {
		return ctrl.Result{}, err
	}
	tenant, err := r.Tenancy.Tenant(ctx, loc.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	if refused, err := r.refuseOversized(ctx, loc, len(selected)); err != nil || refused {
		return ctrl.Result{}, err
	}
	clusters, refused := tenant.Allowed(selected)
	works, dispatchErr := r.dispatchTargets(ctx, loc, clusters, identities)
	if works == nil {
		return ctrl.Result{}, dispatchErr
	}
	// Report what did get through; an error retries the rest.
	conns = connections(loc, clusters, works, identities, tenant, refused)
	summarize(loc, conns)
	refuseClusters(loc, tenant, refused)
	if dispatchErr != nil {
		return ctrl.Result{}, dispatchErr
	}
	if loc.Status.PendingClusters > 0 {
		return ctrl.Result{RequeueAfter: wait.Jitter(pendingRecheck, 0.1)}, nil
	}
	return ctrl.Result{}, nil
}

// writeStatus patches loc's status when it differs from base's, at most once
// per statusInterval per location: a write that comes sooner is left out,
// and wait says when to reconcile again to make it. conns are the
// connections loc's status sums up (nil when it was not reached), for the
// Events of the write.
func (r *Reconciler) writeStatus(ctx context.Context, base, loc *fleetv1alpha1.BackupLocation, conns []fleetv1alpha1.ClusterConnection) (wait time.Duration, err error) {
	if equality.Semantic.DeepEqual(base.Status, loc.Status) {
		return 0, nil
	}
	key := client.ObjectKeyFromObject(loc)
	if last, ok := r.lastWrite.Load(key); ok {
		if wait := r.statusInterval() - time.Since(last.(time.Time)); wait > 0 {
			return wait, nil
		}
	}
	if err := r.Status().Patch(ctx, loc, client.MergeFrom(base)); err != nil {
		return 0, client.IgnoreNotFound(err)
	}
	r.lastWrite.Store(key, time.Now())
	recordChanges(r.Recorder, base, loc, conns)
	return 0, nil
}

func (r *Reconciler) statusInterval() time.Duration {
	if r.StatusInterval > 0 {
		return r.StatusInterval
	}
	return DefaultStatusInterval
}

// reconcileDelete deletes the location's ManifestWorks (the work agents then
// delete the BackupTargets) and lets the location go.
func (r *Reconciler) reconcileDelete(ctx context.Context, loc *fleetv1alpha1.BackupLocation) error {
	if !controllerutil.ContainsFinalizer(loc, Finalizer) {
		return nil
	}
	if err := r.deleteWorks(ctx, loc, nil); err != nil {
		return err
	}
	before := loc.DeepCopy()
	controllerutil.RemoveFinalizer(loc, Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, loc, client.MergeFrom(before)))
}

// SetupWithManager watches BackupLocations (spec changes and deletion), their
// ManifestWorks (feedback), BackupClusters (labels and managed, which change
// what a selector selects), other locations on the same container (a
// conflicting one going away lets a refused one in), Placements and their
// decisions, and what decides tenancy.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupLocation{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.locationOfWork)).
		Watches(&fleetv1alpha1.BackupCluster{}, handler.EnqueueRequestsFromMapFunc(r.allLocations),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&fleetv1alpha1.BackupLocation{}, handler.EnqueueRequestsFromMapFunc(r.locationsSharingStorage),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				DeleteFunc:  func(event.DeleteEvent) bool { return true },
				GenericFunc: func(event.GenericEvent) bool { return false },
			}))
	inNamespace := func(ctx context.Context, ns string) []reconcile.Request {
		return tenancy.Requests(ctx, r, &fleetv1alpha1.BackupLocationList{}, ns)
	}
	return placement.Watch(tenancy.Watch(b, inNamespace), inNamespace).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("backuplocation").
		Complete(r)
}

func (r *Reconciler) workers() int {
	if r.Workers > 0 {
		return r.Workers
	}
	return 16
}
