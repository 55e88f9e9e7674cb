// Package protection keeps each BackupCluster's status.protection: the
// verdicts on the namespaces its spoke reports in its inventory page.
package protection

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupschedule"
)

// Field indexes of this controller.
const (
	indexBackupCluster     = "protection.spec.cluster"
	indexScheduleClusters  = "protection.status.clusters"
	DefaultInventoryPeriod = 30 * time.Minute
)

// Reconciler computes one cluster's protection report. The inventory page
// is not in the manager's cache (it caches only sync pages), so it is read
// from the API server at each reconcile: when the page changes (the
// reconciler watches the inventory pages' metadata, and only theirs), when
// the BackupCluster's spec, one of its Backups' phase or a schedule listing
// it changes, when a Protected verdict lapses, and every InventoryPeriod.
type Reconciler struct {
	client.Client
	// APIReader reads the inventory page (default: the manager's API reader).
	APIReader client.Reader
	// InventoryPeriod is how often a cluster's inventory is read again
	// when nothing changed (default DefaultInventoryPeriod; jittered by up
	// to a tenth). A changed page is read at once.
	InventoryPeriod time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups;backupschedules;schedulepolicies,verbs=get;list;watch

// Reconcile writes the cluster's report when it changed and comes back when
// the inventory is due to be read again or a Protected verdict lapses.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &fleetv1alpha1.BackupCluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	now := r.Now()
	report, lapse, err := r.report(ctx, c.Name, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(c.Status.Protection, report) {
		base := c.DeepCopy()
		c.Status.Protection = report
		if err := r.Status().Patch(ctx, c, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Updated the protection report", "protected", report.Protected, "atRisk", report.AtRisk, "unprotected", report.Unprotected, "reason", report.Reason)
	}
	after := r.InventoryPeriod + rand.N(r.InventoryPeriod/10+1)
	if !lapse.IsZero() && lapse.Sub(now)+time.Second < after {
		after = max(lapse.Sub(now)+time.Second, time.Second)
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// report is the cluster's protection report and when its first Protected
// verdict lapses.
func (r *Reconciler) report(ctx context.Context, cluster string, now time.Time) (*fleetv1alpha1.ProtectionReport, time.Time, error) {
	page := &fleetv1alpha1.BackupCatalog{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cluster, Name: fleetv1alpha1.InventoryPageName}, page)
	if apierrors.IsNotFound(err) {
		return &fleetv1alpha1.ProtectionReport{Reason: fleetv1alpha1.ReasonNoInventory,
			Message: "The cluster's spoke has not reported its namespaces yet"}, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	inv, err := CheckInventory(page, cluster, now)
	if err != nil {
		return &fleetv1alpha1.ProtectionReport{Reason: fleetv1alpha1.ReasonInventoryRejected,
			Message: "The namespace inventory was not believed: " + err.Error()}, time.Time{}, nil
	}
	backups := &fleetv1alpha1.BackupList{}
	if err := r.List(ctx, backups, client.MatchingFields{indexBackupCluster: cluster}); err != nil {
		return nil, time.Time{}, err
	}
	covers, err := r.covers(ctx, cluster, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	report, lapse := Evaluate(inv, Backups(cluster, backups.Items), covers, now)
	return report, lapse, nil
}

// covers are the schedules whose status lists the cluster (suspended ones
// too: a suspended schedule leaves what it covers AtRisk once its RPO
// passes), with their RPOs. A schedule whose policy is missing or invalid,
// or runs at most once a year, covers nothing.
func (r *Reconciler) covers(ctx context.Context, cluster string, now time.Time) ([]Cover, error) {
	list := &fleetv1alpha1.BackupScheduleList{}
	if err := r.List(ctx, list, client.MatchingFields{indexScheduleClusters: cluster}); err != nil {
		return nil, err
	}
	var covers []Cover
	for i := range list.Items {
		s := &list.Items[i]
		if !s.DeletionTimestamp.IsZero() {
			continue
		}
		pol := &fleetv1alpha1.SchedulePolicy{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: string(s.Spec.Policy)}, pol); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		plan, err := backupschedule.NewPlan(pol.Spec, s.CreationTimestamp.Time)
		if err != nil {
			continue
		}
		gap := plan.LongestGap(now)
		if gap == 0 {
			continue
		}
		covers = append(covers, Cover{
			Name:      fmt.Sprintf("%s/%s", s.Namespace, s.Name),
			Selection: s.Spec.Template.Selection,
			RPO:       RPO(gap, s.Spec.Template.Timeout),
		})
	}
	return covers, nil
}

// SetupWithManager indexes Backups by cluster and schedules by the clusters
// in their status, and reconciles a cluster when it, one of its Backups or
// a schedule listing it changes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.InventoryPeriod <= 0 {
		r.InventoryPeriod = DefaultInventoryPeriod
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	ix := mgr.GetFieldIndexer()
	if err := ix.IndexField(context.Background(), &fleetv1alpha1.Backup{}, indexBackupCluster, func(o client.Object) []string {
		return []string{string(o.(*fleetv1alpha1.Backup).Spec.Cluster)}
	}); err != nil {
		return err
	}
	if err := ix.IndexField(context.Background(), &fleetv1alpha1.BackupSchedule{}, indexScheduleClusters, scheduleClusters); err != nil {
		return err
	}
	inventories, err := inventoryPages(mgr)
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(inventories).
		Watches(&fleetv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return clusters(string(o.(*fleetv1alpha1.Backup).Spec.Cluster))
		}), builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*fleetv1alpha1.Backup), e.ObjectNew.(*fleetv1alpha1.Backup)
			return o.Status.Phase != n.Status.Phase || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
		}})).
		Watches(&fleetv1alpha1.BackupSchedule{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return clusters(scheduleClusters(o)...)
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("protection").
		Complete(r)
}

// inventoryPages is a source of the clusters whose inventory page changed.
// It watches the metadata of BackupCatalogs named InventoryPageName, in a
// cache of its own (the manager caches only the pages of syncs): one small
// object per cluster, so a cluster's report follows its inventory at once
// without reading every page every minute (5,000 reads a minute at 5,000
// clusters).
func inventoryPages(mgr ctrl.Manager) (source.Source, error) {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultFieldSelector: fields.OneTermEqualSelector("metadata.name", fleetv1alpha1.InventoryPageName),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(c); err != nil {
		return nil, err
	}
	page := &metav1.PartialObjectMetadata{}
	page.SetGroupVersionKind(fleetv1alpha1.GroupVersion.WithKind("BackupCatalog"))
	return source.Kind(c, client.Object(page), handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return clusters(o.GetNamespace())
	})), nil
}

func scheduleClusters(o client.Object) []string {
	s := o.(*fleetv1alpha1.BackupSchedule)
	out := make([]string, 0, len(s.Status.Clusters))
	for _, c := range s.Status.Clusters {
		out = append(out, c.Cluster)
	}
	return out
}

func clusters(names ...string) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(names))
	for _, n := range names {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: n}})
	}
	return out
}
