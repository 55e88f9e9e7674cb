// Package backupcluster bounds each managed cluster's BackupCatalogs on the
// hub and shows the cluster's health, from its lifeboat add-on, and its
// connections to BackupLocations. OCM's add-on framework (hub/addon) installs
// the spoke, gives it its hub credential and probes its health.
package backupcluster

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
)

// Kind is the kind this package reconciles.
const Kind = "BackupCluster"

// LabelCluster is on the ResourceQuota that bounds a cluster's
// BackupCatalogs: the cluster's name. The hub manager caches only
// ResourceQuotas with it.
const LabelCluster = "fleet.lifeboat.dev/cluster"

// QuotaName is the ResourceQuota's name in every cluster namespace.
const QuotaName = "lifeboat-spoke"

// fieldOwner is the server-side apply field manager of the hub.
const fieldOwner = client.FieldOwner("lifeboat-hub")

// Options are how the hub bounds every spoke.
type Options struct {
	// CatalogPages is how many BackupCatalogs a cluster's namespace may hold
	// at once (default DefaultCatalogPages): a ResourceQuota there refuses
	// more, so a spoke cannot fill the hub.
	CatalogPages int
	// LocationWrites is how many status writes a second may only update a
	// cluster's list of locations, after a burst of 100 (default
	// DefaultLocationWrites). Changes of the cluster's health are written
	// at once.
	LocationWrites float64
}

// DefaultCatalogPages bounds a cluster's BackupCatalogs: 200 pages of at
// most 500 entries, 100,000 backups being synced at once.
const DefaultCatalogPages = 200

func (o *Options) locationWrites() float64 {
	if o.LocationWrites > 0 {
		return o.LocationWrites
	}
	return DefaultLocationWrites
}

func (o *Options) catalogPages() int {
	if o.CatalogPages > 0 {
		return o.CatalogPages
	}
	return DefaultCatalogPages
}

// Reconciler keeps, for every managed BackupCluster, the quota of its
// BackupCatalogs, and the cluster's status: phase and Available from its
// lifeboat ManagedClusterAddOn, and its BackupLocations.
type Reconciler struct {
	client.Client
	Options
	// APIReader reads a BackupCluster afresh after a write conflict (default: Client).
	APIReader client.Reader
	// Recorder records Online/Offline changes on BackupClusters (optional).
	Recorder events.EventRecorder

	pace *pace
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=addon.open-cluster-management.io,resources=managedclusteraddons,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch

// Reconcile keeps a managed cluster's catalog quota and shows its add-on's
// state; both show the cluster's BackupLocations.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bc := &fleetv1alpha1.BackupCluster{}
	if err := r.Get(ctx, req.NamespacedName, bc); err != nil || !bc.DeletionTimestamp.IsZero() {
		// What the cluster owns on the hub goes with it.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	conns, err := r.locations(ctx, bc.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !bc.Spec.Managed {
		_, _, err := r.writeStatus(ctx, bc, func(bc *fleetv1alpha1.BackupCluster) {
			setUnmanaged(bc)
			setLocations(bc, conns)
		})
		return ctrl.Result{}, err
	}
	if err := r.ensureQuota(ctx, bc); err != nil {
		return ctrl.Result{}, err
	}
	mca := &addonv1alpha1.ManagedClusterAddOn{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: bc.Name, Name: addon.Name}, mca); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	} else if err != nil {
		mca = nil
	}
	if d := r.locationsWait(bc, mca, conns); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	before, after, err := r.writeStatus(ctx, bc, func(bc *fleetv1alpha1.BackupCluster) {
		setHealth(bc, mca)
		setLocations(bc, conns)
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	r.recordPhase(bc, before, after)
	return ctrl.Result{}, nil
}

// locationsWait is how long the cluster's status write must wait for its
// turn (pace): 0 unless the write would change the list of locations and
// nothing else.
func (r *Reconciler) locationsWait(bc *fleetv1alpha1.BackupCluster, mca *addonv1alpha1.ManagedClusterAddOn, conns []fleetv1alpha1.LocationConnection) time.Duration {
	health := bc.DeepCopy()
	setHealth(health, mca)
	if !equality.Semantic.DeepEqual(bc.Status, health.Status) {
		return 0
	}
	setLocations(health, conns)
	if equality.Semantic.DeepEqual(bc.Status, health.Status) {
		return 0
	}
	return r.pace.wait(bc.Name, time.Now())
}

// recordPhase records an event when the cluster went Online or Offline.
func (r *Reconciler) recordPhase(bc *fleetv1alpha1.BackupCluster, before, after fleetv1alpha1.BackupClusterPhase) {
	if r.Recorder == nil || before == after {
		return
	}
	switch after {
	case fleetv1alpha1.ClusterOnline:
		r.Recorder.Eventf(bc, nil, corev1.EventTypeNormal, "ClusterOnline", "AddOnAvailable", "The lifeboat add-on is Available: the spoke renews its add-on Lease (was %s)", orUnknown(string(before)))
	case fleetv1alpha1.ClusterOffline:
		r.Recorder.Eventf(bc, nil, corev1.EventTypeWarning, "ClusterOffline", "AddOnUnavailable", "The lifeboat add-on is no longer Available: %s", availableMessage(bc))
	}
}

// SetupWithManager watches BackupClusters (spec changes), the quotas they
// own, the clusters' lifeboat ManagedClusterAddOns, the BackupTarget
// ManifestWorks of BackupLocations (each cluster's connection) and
// BackupLocations (the clusters their namespace may not use).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.pace = newPace(r.locationWrites())
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ResourceQuota{}).
		Watches(&addonv1alpha1.ManagedClusterAddOn{}, handler.EnqueueRequestsFromMapFunc(clusterOfNamespace),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == addon.Name }))).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(clusterOfNamespace),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetLabels()[dispatch.LabelKind] == dispatch.LabelValue(locations.Kind)
			}))).
		Watches(&fleetv1alpha1.BackupLocation{}, locationEvents{r}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Named("backupcluster").
		Complete(r)
}

// clusterOfNamespace maps an object in a cluster namespace (the cluster's
// ManagedClusterAddOn, a location's ManifestWork) to the cluster.
func clusterOfNamespace(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
}

// refusedClusters are the clusters a BackupLocation's status lists as ones
// its namespace may not use: they have no ManifestWork to watch.
func refusedClusters(o client.Object) []string {
	loc, ok := o.(*fleetv1alpha1.BackupLocation)
	if !ok {
		return nil
	}
	var out []string
	for _, c := range loc.Status.NotValid {
		if c.Reason == fleetv1alpha1.ReasonClusterNotAllowed {
			out = append(out, c.Cluster)
		}
	}
	return out
}

// locationEvents enqueues the clusters a BackupLocation lists as refused,
// before and after an update, when that list changed, and, when it is
// deleted, the clusters that still have one of its works.
type locationEvents struct{ r client.Reader }

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (locationEvents) Create(_ context.Context, e event.CreateEvent, q queue) {
	enqueueClusters(q, e.Object)
}

func (locationEvents) Update(_ context.Context, e event.UpdateEvent, q queue) {
	if slices.Equal(refusedClusters(e.ObjectOld), refusedClusters(e.ObjectNew)) {
		return
	}
	enqueueClusters(q, e.ObjectOld, e.ObjectNew)
}

func (h locationEvents) Delete(ctx context.Context, e event.DeleteEvent, q queue) {
	enqueueClusters(q, e.Object)
	loc, ok := e.Object.(*fleetv1alpha1.BackupLocation)
	if !ok {
		return
	}
	works := &workv1.ManifestWorkList{}
	if err := h.r.List(ctx, works, locations.WorkLabels(loc)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list the works of a deleted BackupLocation")
		return
	}
	for _, mw := range works.Items {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: mw.Namespace}})
	}
}

func (locationEvents) Generic(_ context.Context, e event.GenericEvent, q queue) {
	enqueueClusters(q, e.Object)
}

func enqueueClusters(q queue, objs ...client.Object) {
	for _, o := range objs {
		for _, c := range refusedClusters(o) {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: c}})
		}
	}
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}
