// Package backupcluster installs the spoke on every managed cluster through
// its agent ManifestWork, keeps the spoke's rotating credential for the hub,
// and shows the cluster's health and its connections to BackupLocations.
package backupcluster

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
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
)

// Kind is the kind this package reconciles.
const Kind = "BackupCluster"

// LabelCluster is on the agent ManifestWork and on the hub ServiceAccount,
// Role and RoleBinding of a cluster's spoke: the cluster's name. The hub
// manager caches only ServiceAccounts, Roles and RoleBindings with it.
const LabelCluster = "fleet.lifeboat.dev/cluster"

// fieldOwner is the server-side apply field manager of the hub.
const fieldOwner = client.FieldOwner("lifeboat-hub")

// indexLocationClusters indexes BackupLocations by the clusters in their status.
const indexLocationClusters = "backupcluster.status.clusters"

// Defaults of Options.
const (
	DefaultCredentialLifetime = 24 * time.Hour
	// MinCredentialLifetime is the shortest token the API server issues.
	MinCredentialLifetime = 10 * time.Minute
	DefaultOfflineGrace   = time.Minute
)

// Options are what the hub tells every spoke and how it judges them.
type Options struct {
	// HubServer is the hub API server's URL as spokes reach it (required).
	HubServer string
	// HubCA is the PEM CA bundle spokes trust for HubServer; empty: their system roots.
	HubCA []byte
	// SpokeImage is the spoke manager's image (required).
	SpokeImage string
	// SpokeValues are values of the spoke chart for every cluster (resources,
	// nodeSelector, extraArgs, ...); the hub sets the cluster's name, its hub
	// credential, the namespace and the image itself.
	SpokeValues map[string]any
	// CredentialLifetime is how long a spoke's hub token lasts (default
	// DefaultCredentialLifetime, at least MinCredentialLifetime); it is
	// replaced when less than 20% is left.
	CredentialLifetime time.Duration
	// OfflineGrace is how long past its heartbeat Lease a cluster stays
	// Online (default DefaultOfflineGrace).
	OfflineGrace time.Duration
	// CatalogPages is how many BackupCatalogs a cluster's namespace may hold
	// at once (default DefaultCatalogPages): a ResourceQuota there refuses
	// more, so a spoke cannot fill the hub.
	CatalogPages int
}

// DefaultCatalogPages bounds a cluster's BackupCatalogs: 200 pages of at
// most 500 entries, 100,000 backups being synced at once.
const DefaultCatalogPages = 200

func (o *Options) catalogPages() int {
	if o.CatalogPages > 0 {
		return o.CatalogPages
	}
	return DefaultCatalogPages
}

// Reconciler keeps, for every managed BackupCluster, the spoke's hub
// identity and its agent ManifestWork, and the cluster's status: phase,
// heartbeat, spoke version, Available, and its BackupLocations.
type Reconciler struct {
	client.Client
	Options
	// APIReader reads a BackupCluster afresh after a write conflict (default: Client).
	APIReader client.Reader
	// Recorder records Online/Offline changes on BackupClusters (optional).
	Recorder events.EventRecorder
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create,resourceNames=lifeboat-spoke
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch

// Reconcile revokes an unmanaged cluster's hub credential; for a managed one
// it keeps the spoke's hub identity, mints or reuses its token, applies the
// agent work when it changed, and reads the spoke's heartbeat back. Both
// show the cluster's BackupLocations. It comes back when the token is due
// for rotation or an Online cluster would turn Offline.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bc := &fleetv1alpha1.BackupCluster{}
	if err := r.Get(ctx, req.NamespacedName, bc); err != nil || !bc.DeletionTimestamp.IsZero() {
		// What the cluster owns on the hub goes with it; the agent work stays.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	locations, omitted, err := r.locations(ctx, bc.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !bc.Spec.Managed {
		if err := r.revokeAccess(ctx, bc); err != nil {
			return ctrl.Result{}, err
		}
		_, _, err := r.writeStatus(ctx, bc, func(bc *fleetv1alpha1.BackupCluster) {
			setUnmanaged(bc)
			bc.Status.Locations, bc.Status.LocationsOmitted = locations, omitted
		})
		return ctrl.Result{}, err
	}

	sa, err := r.ensureAccess(ctx, bc)
	if err != nil {
		return ctrl.Result{}, err
	}
	current, err := r.currentWork(ctx, bc.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	cred, err := r.credential(ctx, sa, current)
	if err != nil {
		return ctrl.Result{}, err
	}
	mw, err := r.agentWork(bc, cred)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if err := r.applyWork(ctx, mw); err != nil {
		return ctrl.Result{}, err
	}

	now := r.now()
	rep := readReport(mw)
	var (
		offlineAt time.Time
		last      *metav1.Time
	)
	before, after, err := r.writeStatus(ctx, bc, func(bc *fleetv1alpha1.BackupCluster) {
		offlineAt = r.setHealth(bc, rep, now)
		last = bc.Status.LastHeartbeatTime
		bc.Status.Locations, bc.Status.LocationsOmitted = locations, omitted
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	r.recordPhase(bc, before, after, last)
	return ctrl.Result{RequeueAfter: r.until(now, cred.rotation(), offlineAt)}, nil
}

// recordPhase records an event when the cluster went Online or Offline.
func (r *Reconciler) recordPhase(bc *fleetv1alpha1.BackupCluster, before, after fleetv1alpha1.BackupClusterPhase, last *metav1.Time) {
	if r.Recorder == nil || before == after || last == nil {
		return
	}
	switch after {
	case fleetv1alpha1.ClusterOnline:
		r.Recorder.Eventf(bc, nil, corev1.EventTypeNormal, "ClusterOnline", "Heartbeat", "The spoke's heartbeat arrives, last at %s (was %s)", last.UTC().Format(time.RFC3339), orUnknown(string(before)))
	case fleetv1alpha1.ClusterOffline:
		r.Recorder.Eventf(bc, nil, corev1.EventTypeWarning, "ClusterOffline", "Heartbeat", "No heartbeat from the spoke since %s", last.UTC().Format(time.RFC3339))
	}
}

// until is how long from now until the earliest of the non-zero times, plus
// a second so that the moment has passed; zero when there is none.
func (r *Reconciler) until(now time.Time, times ...time.Time) time.Duration {
	var earliest time.Time
	for _, t := range times {
		if !t.IsZero() && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
	}
	if earliest.IsZero() {
		return 0
	}
	return max(earliest.Sub(now)+time.Second, time.Second)
}

// SetupWithManager watches BackupClusters (spec changes), the hub identities
// they own, agent ManifestWorks (the spoke's heartbeat comes back in their
// status) and BackupLocations (their per-cluster status, before and after a
// change, so that a cluster a location dropped loses its entry).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.HubServer == "" || r.SpokeImage == "" {
		return errors.New("backupcluster: the hub server URL and the spoke image are required")
	}
	if r.CredentialLifetime != 0 && r.CredentialLifetime < MinCredentialLifetime {
		return errors.New("backupcluster: the credential lifetime must be at least " + MinCredentialLifetime.String())
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &fleetv1alpha1.BackupLocation{}, indexLocationClusters, locationClusters); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.ResourceQuota{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(clusterOfWork),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == AgentWorkName }))).
		Watches(&fleetv1alpha1.BackupLocation{}, locationEvents{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Named("backupcluster").
		Complete(r)
}

// clusterOfWork maps an agent work to its cluster: the namespace it is in.
func clusterOfWork(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
}

// locationClusters are the clusters in a BackupLocation's status.
func locationClusters(o client.Object) []string {
	loc, ok := o.(*fleetv1alpha1.BackupLocation)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(loc.Status.Clusters))
	for _, c := range loc.Status.Clusters {
		out = append(out, c.Cluster)
	}
	return out
}

// locationEvents enqueues the clusters a BackupLocation lists in its status,
// before and after an update, when that list changed.
type locationEvents struct{}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (locationEvents) Create(_ context.Context, e event.CreateEvent, q queue) {
	enqueueClusters(q, e.Object)
}

func (locationEvents) Update(_ context.Context, e event.UpdateEvent, q queue) {
	o, oldOK := e.ObjectOld.(*fleetv1alpha1.BackupLocation)
	n, newOK := e.ObjectNew.(*fleetv1alpha1.BackupLocation)
	if oldOK && newOK && equalConnections(o, n) {
		return
	}
	enqueueClusters(q, e.ObjectOld, e.ObjectNew)
}

func (locationEvents) Delete(_ context.Context, e event.DeleteEvent, q queue) {
	enqueueClusters(q, e.Object)
}

func (locationEvents) Generic(_ context.Context, e event.GenericEvent, q queue) {
	enqueueClusters(q, e.Object)
}

func enqueueClusters(q queue, objs ...client.Object) {
	for _, o := range objs {
		for _, c := range locationClusters(o) {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: c}})
		}
	}
}

func equalConnections(a, b *fleetv1alpha1.BackupLocation) bool {
	return equality.Semantic.DeepEqual(a.Status.Clusters, b.Status.Clusters)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) lifetime() time.Duration {
	if r.CredentialLifetime > 0 {
		return r.CredentialLifetime
	}
	return DefaultCredentialLifetime
}

func (r *Reconciler) offlineGrace() time.Duration {
	if r.OfflineGrace > 0 {
		return r.OfflineGrace
	}
	return DefaultOfflineGrace
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}
