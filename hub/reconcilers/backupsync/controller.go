// Package backupsync imports what a BackupLocation's container holds: one
// cluster lists it and writes catalog pages, the hub imports unknown backups
// and marks Backups whose data is gone. One sync per storage account and
// container runs at a time, serialized by a Lease on the hub.
package backupsync

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Kind is the hub kind dispatch labels the ManifestWorks with.
const Kind = "BackupSync"

// Finalizer lets a BackupSync release its Lease and remove its work and
// catalog pages before it goes.
const Finalizer = "fleet.lifeboat.dev/sync"

// DefaultSystemNamespace holds the sync Leases.
const DefaultSystemNamespace = "lifeboat-system"

// DefaultLeaseDuration is how long a sync's Lease lasts without renewal: a
// hub that crashed mid-sync blocks the container at most this long.
const DefaultLeaseDuration = 2 * time.Minute

const (
	// waitRecheck is how often a sync waiting for another one looks again.
	waitRecheck = 3 * time.Second
	// locationRecheck is how often a sync waiting for a Valid cluster looks again.
	locationRecheck = 15 * time.Second
)

// Reconciler runs hub BackupSyncs.
type Reconciler struct {
	client.Client
	// APIReader reads Leases, catalog pages and Backups around the cache.
	APIReader client.Reader
	// SystemNamespace holds the Leases (default DefaultSystemNamespace).
	SystemNamespace string
	// LeaseDuration (default DefaultLeaseDuration).
	LeaseDuration time.Duration
	// PageSize is the spoke's spec.pageSize; 0 leaves the CRD default.
	PageSize int32
	// Tenancy says which clusters' backups the sync's namespace may import.
	Tenancy *tenancy.Policy
	// Recorder records each sync's result (optional).
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupsyncs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupsyncs/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupsyncs/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch;delete;deletecollection
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations/status,verbs=get;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch;delete

// Reconcile runs a sync through its phases: pick a cluster, take the
// container's Lease (or wait for it), dispatch the spoke BackupSync, and once
// the spoke has written every page, import them and release the Lease.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	s := &fleetv1alpha1.BackupSync{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.cleanUp(ctx, s)
	}
	if finished(s) {
		return ctrl.Result{}, r.releaseLease(ctx, s)
	}
	if !controllerutil.ContainsFinalizer(s, Finalizer) {
		before := s.DeepCopy()
		controllerutil.AddFinalizer(s, Finalizer)
		if err := r.Patch(ctx, s, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	base := s.DeepCopy()
	defer func() {
		if err := r.Status().Patch(ctx, s, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
		} else if finished(s) {
			recordResult(r.Recorder, s)
		} else {
			recordRetrying(r.Recorder, base, s)
		}
		if finished(s) {
			retErr = kerrors.NewAggregate([]error{retErr, r.releaseLease(ctx, s)})
		}
	}()
	initStatus(s)

	loc, cluster, wait, err := r.pickCluster(ctx, s)
	if err != nil || wait > 0 || cluster == "" {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	if wait, err := r.acquireLease(ctx, s, loc); err != nil || wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	mw, err := r.dispatchSync(ctx, s, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	done, err := r.mirror(ctx, s, mw)
	if err != nil || !done {
		return ctrl.Result{RequeueAfter: r.renewEvery()}, err
	}
	imported, err := r.importPages(ctx, s, loc)
	if err != nil || !imported {
		return ctrl.Result{RequeueAfter: r.renewEvery()}, err
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches BackupSyncs, their ManifestWorks (spoke feedback)
// and catalog pages (named by their sync's UID label).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupSync{}).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.syncOfWork)).
		Watches(&fleetv1alpha1.BackupCatalog{}, handler.EnqueueRequestsFromMapFunc(r.syncOfPage)).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.syncsWaitingFor)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("backupsync").
		Complete(r)
}

func (r *Reconciler) syncOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	return dispatch.OwnerOfWork(ctx, r, obj, Kind, &fleetv1alpha1.BackupSyncList{})
}

func (r *Reconciler) syncOfPage(_ context.Context, obj client.Object) []reconcile.Request {
	page, ok := obj.(*fleetv1alpha1.BackupCatalog)
	if !ok || page.Spec.Sync == nil || page.Spec.Sync.Namespace == "" || page.Spec.Sync.Name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: string(page.Spec.Sync.Namespace), Name: string(page.Spec.Sync.Name)}}}
}

// syncsWaitingFor wakes the syncs waiting for a sync Lease when it changes
// (is released or taken).
func (r *Reconciler) syncsWaitingFor(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetNamespace() != r.systemNamespace() || obj.GetLabels()[LabelLease] == "" {
		return nil
	}
	list := &fleetv1alpha1.BackupSyncList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Status.Phase == backupv1alpha1.TaskPending {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

func (r *Reconciler) renewEvery() time.Duration {
	return wait.Jitter(r.leaseDuration()/4, 0.1)
}

// recordRetrying records a Warning Event SyncRetrying when the cluster's
// listing started failing on storage (Ready reason StorageError: the
// cluster retries it).
func recordRetrying(rec events.EventRecorder, before, s *fleetv1alpha1.BackupSync) {
	c := meta.FindStatusCondition(s.Status.Conditions, fleetv1alpha1.ConditionReady)
	if c == nil || c.Reason != backupv1alpha1.ReasonStorageError {
		return
	}
	if b := meta.FindStatusCondition(before.Status.Conditions, fleetv1alpha1.ConditionReady); b != nil && b.Reason == c.Reason {
		return
	}
	hubevents.Record(rec, s, corev1.EventTypeWarning, "SyncRetrying", "Sync", c.Message)
}

// recordResult records a finished sync's outcome, with its Ready message
// (what it imported, missed and rejected, and why): SyncCompleted, or a
// Warning with the reason when something was rejected or the sync failed.
func recordResult(rec events.EventRecorder, s *fleetv1alpha1.BackupSync) {
	c := meta.FindStatusCondition(s.Status.Conditions, fleetv1alpha1.ConditionReady)
	if c == nil {
		return
	}
	eventtype, reason := corev1.EventTypeNormal, "SyncCompleted"
	if s.Status.Phase == backupv1alpha1.TaskFailed || c.Reason != backupv1alpha1.ReasonSucceeded {
		eventtype, reason = corev1.EventTypeWarning, "Sync"+c.Reason
	}
	hubevents.Record(rec, s, eventtype, reason, "Sync", c.Message)
}
