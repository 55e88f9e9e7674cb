// Package clusterdiscovery keeps a BackupCluster, registered with Open Cluster
// Management, for every Gardener shoot that a ClusterDiscovery selects.
package clusterdiscovery

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
)

// Finalizer lets a deleted ClusterDiscovery release its clusters first.
const Finalizer = "fleet.lifeboat.dev/cluster-discovery"

// Defaults for fields the CRD defaults too.
const (
	defaultInterval        = 10 * time.Minute
	defaultOnboardingLabel = "fleet.lifeboat.dev/discovery"
	// configRetry is how soon a discovery whose Secret, kubeconfig or selector
	// is wrong looks again (there is no watch on Secrets).
	configRetry = 30 * time.Second
)

// Reconciler runs ClusterDiscoveries: it lists the selected shoots on every
// run, keeps a BackupCluster and the OCM registration for each ready one, and
// marks the clusters whose shoots are gone or no longer selected Unmanaged. A
// watch per ClusterDiscovery on its garden starts a run within seconds of a
// shoot change; the interval catches the rest.
type Reconciler struct {
	client.Client
	// APIReader reads around the cache: the kubeconfig Secret, and clusters the
	// cache has not caught up with after a conflict.
	APIReader client.Reader
	// Recorder records events on ClusterDiscoveries (optional).
	Recorder events.EventRecorder
	// NewSource builds a discovery's shoot source (default discovery.NewGardener).
	NewSource func(kubeconfig []byte, projects []string, selector labels.Selector) (discovery.Source, error)
	// Workers is how many clusters are onboarded at once (default 16).
	Workers int
	// Now is the clock (default time.Now).
	Now func() time.Time

	watches watchSet
	// events carries "shoots changed" from the watches to the controller.
	events chan event.GenericEvent
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=clusterdiscoveries,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=clusterdiscoveries/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=clusterdiscoveries/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get,namespace=lifeboat-system
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=managedclusters,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames="open-cluster-management:managedcluster:work"
// The work agent's own permissions, which the hub may only grant if it holds them:
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch;update
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks/status,verbs=update;patch

// Reconcile runs one discovery: open the garden, list the selected shoots,
// make sure a watch on them runs, onboard or mark each, release the clusters no
// longer selected, and report the run in one status patch.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	cd := &fleetv1alpha1.ClusterDiscovery{}
	if err := r.Get(ctx, req.NamespacedName, cd); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.watches.stop(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cd.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, cd)
	}
	if !controllerutil.ContainsFinalizer(cd, Finalizer) {
		before := cd.DeepCopy()
		controllerutil.AddFinalizer(cd, Finalizer)
		if err := r.Patch(ctx, cd, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, err
		}
	}

	base := cd.DeepCopy()
	run := newRun(cd, r.now())
	defer func() {
		run.report(cd, r.now())
		if err := r.Status().Patch(ctx, cd, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		}
		r.recordEvents(cd, base, run)
	}()

	src, err := r.openSource(ctx, cd, run)
	if err != nil {
		r.watches.stop(cd.Name)
		return ctrl.Result{RequeueAfter: wait.Jitter(configRetry, 0.1)}, nil
	}
	shoots, err := r.listShoots(ctx, src, run)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.watches.ensure(ctx, cd.Name, src, r.events)
	if err := r.ensureWorkAgentRole(ctx); err != nil {
		run.hubFailed("creating the work agent ClusterRole", err)
		return ctrl.Result{}, err
	}
	if err := r.syncClusters(ctx, cd, shoots, run); err != nil {
		run.hubFailed("reading the hub's clusters", err)
		return ctrl.Result{}, err
	}
	if err := run.err(); err != nil {
		return ctrl.Result{}, err
	}
	r.watches.markFull(cd.Name, run.full, run.started)
	return ctrl.Result{RequeueAfter: wait.Jitter(interval(cd), 0.1)}, nil
}

// reconcileDelete stops the watch, releases every cluster this discovery holds
// (clusters nobody else holds become Unmanaged), then lets the object go.
func (r *Reconciler) reconcileDelete(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery) error {
	r.watches.stop(cd.Name)
	if !controllerutil.ContainsFinalizer(cd, Finalizer) {
		return nil
	}
	if err := r.releaseAll(ctx, cd); err != nil {
		return err
	}
	before := cd.DeepCopy()
	controllerutil.RemoveFinalizer(cd, Finalizer)
	return r.Patch(ctx, cd, client.MergeFrom(before))
}

// SetupWithManager watches ClusterDiscoveries (spec changes only; runs do not
// trigger themselves) and the shoot watches' events, and stops the shoot
// watches when the manager stops.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.events = make(chan event.GenericEvent, 64)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.watches.stopAll()
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.ClusterDiscovery{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.events, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Named("clusterdiscovery").
		Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) workers() int {
	if r.Workers > 0 {
		return r.Workers
	}
	return 16
}

func interval(cd *fleetv1alpha1.ClusterDiscovery) time.Duration {
	if cd.Spec.Interval != nil && cd.Spec.Interval.Duration > 0 {
		return cd.Spec.Interval.Duration
	}
	return defaultInterval
}

func onboardingLabel(cd *fleetv1alpha1.ClusterDiscovery) string {
	if cd.Spec.OnboardingLabel != "" {
		return cd.Spec.OnboardingLabel
	}
	return defaultOnboardingLabel
}
