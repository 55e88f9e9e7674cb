package backupsync

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// PageCache limits the manager's cache of BackupCatalogs to pages that name
// their sync (fleetv1alpha1.LabelSyncUID); the Pages reconciler deletes
// those of syncs that do not run, so the cache holds pages of running syncs.
func PageCache() cache.ByObject {
	req, err := labels.NewRequirement(fleetv1alpha1.LabelSyncUID, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return cache.ByObject{Label: labels.NewSelector().Add(*req)}
}

// pageListChunk is how many pages one List call returns.
const pageListChunk = 50

// Pages deletes catalog pages that no running sync waits for: pages of a
// sync that finished, was deleted or made again, or never existed. A spoke
// writes pages only for a sync the hub sent it; anything else only takes
// its cluster's quota and the hub's memory.
type Pages struct {
	client.Client
	// APIReader reads a page's sync (default: the manager's API reader).
	APIReader client.Reader
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupsyncs,verbs=get

// Reconcile deletes the page unless its sync runs and is the one it names.
func (r *Pages) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	page := &fleetv1alpha1.BackupCatalog{}
	if err := r.Get(ctx, req.NamespacedName, page); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if page.Spec.Sync == nil {
		ctrl.LoggerFrom(ctx).Info("Deleted a catalog page that carries a sync's label but names no sync")
		return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, page, client.Preconditions{UID: ptr.To(page.UID)}))
	}
	key := client.ObjectKey{Namespace: string(page.Spec.Sync.Namespace), Name: string(page.Spec.Sync.Name)}
	// Read afresh: the cache may lag behind a sync just sent to its cluster.
	s := &fleetv1alpha1.BackupSync{}
	err := r.APIReader.Get(ctx, key, s)
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	why := ""
	switch {
	case err != nil:
		why = "its sync does not exist"
	case string(s.UID) != page.Labels[fleetv1alpha1.LabelSyncUID]:
		why = "it names another sync of that name"
	case finished(s):
		why = "its sync has finished"
	default:
		return ctrl.Result{}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleted a catalog page no running sync waits for", "why", why, "sync", key)
	return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, page, client.Preconditions{UID: ptr.To(page.UID)}))
}

// SetupWithManager watches catalog pages.
func (r *Pages) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupCatalog{}).
		Named("backupcatalog-pages").
		Complete(r)
}
