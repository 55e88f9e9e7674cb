// Package tombstone purges the data of force-deleted Backups: for each
// tombstone on a BackupLocation it sends a forced BackupDeletion to a cluster
// with a Valid connection, and clears the tombstone once the data is gone.
package tombstone

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupsync"
)

// Kind is the kind dispatch labels the purge ManifestWorks with.
const Kind = "Tombstone"

// LabelLocation on a purge work names its BackupLocation (dispatch.LabelValue).
const LabelLocation = "fleet.lifeboat.dev/location"

// SpokeNamespace is where the purging BackupDeletions live on a spoke.
const SpokeNamespace = "lifeboat-system"

// purgeRecheck is how soon a location with a purge under way is looked at
// again, in case a feedback event was missed.
const purgeRecheck = 30 * time.Second

// syncRecheck is how soon a purged tombstone is looked at again while a sync
// of its container runs.
const syncRecheck = 5 * time.Second

// Reconciler purges tombstoned data of BackupLocations.
type Reconciler struct {
	client.Client
	// APIReader re-reads a location around the cache when clearing a tombstone
	// conflicts, and reads the container's sync Lease.
	APIReader client.Reader
	// SystemNamespace holds the sync Leases (default backupsync.DefaultSystemNamespace).
	SystemNamespace string
	// Recorder records purges on the location (optional).
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations/status,verbs=get;patch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get

// Reconcile sends a forced BackupDeletion for each tombstone that has none
// yet, as soon as a cluster has a Valid connection to the location; clears
// the tombstones whose data was deleted; and deletes the works of tombstones
// that are gone.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, req.NamespacedName, loc); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.deleteWorks(ctx, req.Namespace, req.Name, nil)
		}
		return ctrl.Result{}, err
	}
	works, err := r.works(ctx, loc)
	if err != nil {
		return ctrl.Result{}, err
	}
	var purged []fleetv1alpha1.Tombstone
	var notes []string
	keep := map[string]bool{}
	underWay := false
	for _, ts := range loc.Status.Tombstones {
		name := dispatch.Name(Kind, loc.Namespace, ownerName(loc, ts))
		mw := works[name]
		if d, ok := deletion(mw); ok && d.Phase == backupv1alpha1.TaskCompleted {
			purged = append(purged, ts)
			notes = append(notes, fmt.Sprintf("cluster %s deleted %d blobs of force-deleted backup %s (Backup %s) at %s",
				mw.Namespace, d.BlobsDeleted, ts.BackupID, ts.Backup, dataPath(loc, ts)))
			continue
		}
		keep[name] = true
		if d, ok := deletion(mw); ok && d.Phase == backupv1alpha1.TaskFailed {
			// The cluster refused it: the work shows why; the tombstone stays.
			continue
		}
		sent, err := r.purge(ctx, loc, ts, mw)
		if err != nil {
			return ctrl.Result{}, err
		}
		underWay = underWay || sent
	}
	waitForSync := false
	if len(purged) > 0 {
		// A sync that listed the container before the purge must not import
		// the purged backup once its tombstone is gone: clear tombstones only
		// while no sync of the container runs, and keep their purge works
		// (which say the data is gone) until then.
		busy, err := r.syncRunning(ctx, loc)
		if err != nil {
			return ctrl.Result{}, err
		}
		if busy {
			for _, ts := range purged {
				keep[dispatch.Name(Kind, loc.Namespace, ownerName(loc, ts))] = true
			}
			purged = nil
			waitForSync = true
		}
	}
	if err := r.clear(ctx, client.ObjectKeyFromObject(loc), purged); err != nil {
		return ctrl.Result{}, err
	}
	if len(purged) > 0 {
		for _, note := range notes {
			r.event(loc, "Normal", "TombstonePurged", note)
		}
	}
	if err := r.deleteWorks(ctx, loc.Namespace, loc.Name, keep); err != nil {
		return ctrl.Result{}, err
	}
	if waitForSync {
		return ctrl.Result{RequeueAfter: wait.Jitter(syncRecheck, 0.1)}, nil
	}
	if underWay {
		return ctrl.Result{RequeueAfter: wait.Jitter(purgeRecheck, 0.1)}, nil
	}
	return ctrl.Result{}, nil
}

// syncRunning is true while a live sync holds the Lease of loc's container.
func (r *Reconciler) syncRunning(ctx context.Context, loc *fleetv1alpha1.BackupLocation) (bool, error) {
	ns := r.SystemNamespace
	if ns == "" {
		ns = backupsync.DefaultSystemNamespace
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	lease := &coordinationv1.Lease{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: backupsync.LeaseName(loc.Spec.Azure.StorageAccount, loc.Spec.Azure.Container)}, lease)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	spec := lease.Spec
	if ptr.Deref(spec.HolderIdentity, "") == "" || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return false, nil
	}
	return time.Since(spec.RenewTime.Time) < time.Duration(*spec.LeaseDurationSeconds)*time.Second, nil
}

// purge sends the forced BackupDeletion of ts's data to a cluster with a
// Valid connection, the backup's source cluster first, unless a work for it
// exists already. It reports whether a purge is under way.
func (r *Reconciler) purge(ctx context.Context, loc *fleetv1alpha1.BackupLocation, ts fleetv1alpha1.Tombstone, current *workv1.ManifestWork) (bool, error) {
	if current != nil {
		// Sent before: a cluster owns the purge; it may have lost its
		// connection since, in which case it is sent again elsewhere.
		c, err := locations.Connection(ctx, r, loc, current.Namespace)
		if err != nil {
			return false, err
		}
		if c != nil && c.Phase == backupv1alpha1.TargetValid {
			return true, nil
		}
	}
	cluster, err := locations.ValidCluster(ctx, r, loc, ts.SourceCluster)
	if err != nil {
		return false, err
	}
	if cluster == "" {
		return false, nil
	}
	if current != nil && current.Namespace != cluster {
		if err := client.IgnoreNotFound(r.Delete(ctx, current)); err != nil {
			return false, err
		}
	}
	mw, err := purgeWork(loc, ts, cluster)
	if err != nil {
		return false, reconcile.TerminalError(err)
	}
	applied, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	if err != nil {
		return false, err
	}
	if applied {
		ctrl.LoggerFrom(ctx).Info("Dispatched the purge of a tombstone", "cluster", cluster, "sourceCluster", ts.SourceCluster, "backupID", ts.BackupID)
	}
	return true, nil
}

// clear removes purged tombstones from the location's status, with
// optimistic locking so that a tombstone added meanwhile is not lost.
func (r *Reconciler) clear(ctx context.Context, key client.ObjectKey, purged []fleetv1alpha1.Tombstone) error {
	if len(purged) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, ts := range purged {
		gone[ts.SourceCluster+"/"+ts.BackupID] = true
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		loc := &fleetv1alpha1.BackupLocation{}
		if err := r.APIReader.Get(ctx, key, loc); err != nil {
			return client.IgnoreNotFound(err)
		}
		patch := client.MergeFromWithOptions(loc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		kept := loc.Status.Tombstones[:0:0]
		for _, ts := range loc.Status.Tombstones {
			if !gone[ts.SourceCluster+"/"+ts.BackupID] {
				kept = append(kept, ts)
			}
		}
		if len(kept) == len(loc.Status.Tombstones) {
			return nil
		}
		loc.Status.Tombstones = kept
		return r.Status().Patch(ctx, loc, patch)
	})
}

// works are the location's purge works by name.
func (r *Reconciler) works(ctx context.Context, loc *fleetv1alpha1.BackupLocation) (map[string]*workv1.ManifestWork, error) {
	list := &workv1.ManifestWorkList{}
	if err := r.List(ctx, list, client.MatchingLabels{
		dispatch.LabelKind: Kind, dispatch.LabelNamespace: dispatch.LabelValue(loc.Namespace), LabelLocation: dispatch.LabelValue(loc.Name),
	}); err != nil {
		return nil, err
	}
	out := make(map[string]*workv1.ManifestWork, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// deleteWorks deletes the location's purge works whose names are not in keep.
func (r *Reconciler) deleteWorks(ctx context.Context, namespace, name string, keep map[string]bool) error {
	list := &workv1.ManifestWorkList{}
	if err := r.List(ctx, list, client.MatchingLabels{
		dispatch.LabelKind: Kind, dispatch.LabelNamespace: dispatch.LabelValue(namespace), LabelLocation: dispatch.LabelValue(name),
	}); err != nil {
		return err
	}
	var errs []error
	for i := range list.Items {
		mw := &list.Items[i]
		if !keep[mw.Name] && mw.DeletionTimestamp.IsZero() {
			errs = append(errs, client.IgnoreNotFound(r.Delete(ctx, mw)))
		}
	}
	return kerrors.NewAggregate(errs)
}

// deletion is what the purge's BackupDeletion reported, if anything.
func deletion(mw *workv1.ManifestWork) (dispatch.Deletion, bool) {
	st, ok := dispatch.Feedback(mw, 1)
	if !ok {
		return dispatch.Deletion{}, false
	}
	return dispatch.ReadDeletion(st)
}

// ownerName names a tombstone's purge among the location's: one per backup's data.
func ownerName(loc *fleetv1alpha1.BackupLocation, ts fleetv1alpha1.Tombstone) string {
	return loc.Name + "." + ts.SourceCluster + "." + ts.BackupID
}

// purgeWork is the ManifestWork that sends cluster a forced BackupDeletion of
// ts's data. Tombstones do not change, so its generation is always 1.
func purgeWork(loc *fleetv1alpha1.BackupLocation, ts fleetv1alpha1.Tombstone, cluster string) (*workv1.ManifestWork, error) {
	owner := dispatch.HubObject{Kind: Kind, Namespace: loc.Namespace, Name: ownerName(loc, ts), UID: ts.BackupUID, Generation: 1}
	del := &backupv1alpha1.BackupDeletion{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupDeletion"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      dispatch.SpokeName(loc.Namespace, "purge/"+ownerName(loc, ts)),
			Namespace: SpokeNamespace,
			Labels:    dispatch.Labels(owner),
		},
		Spec: backupv1alpha1.BackupDeletionSpec{
			Target: backupv1alpha1.ObjectName(backuplocation.TargetName(loc.Namespace, loc.Name)),
			Source: backupv1alpha1.BackupSource{Cluster: backupv1alpha1.ClusterName(ts.SourceCluster), BackupID: backupv1alpha1.BackupID(ts.BackupID)},
			Force:  true,
		},
	}
	if ts.Backup != "" {
		del.Spec.Hub = &backupv1alpha1.HubObjectReference{
			Namespace: backupv1alpha1.NamespaceName(loc.Namespace), Name: backupv1alpha1.ObjectName(ts.Backup), UID: ts.BackupUID,
		}
	}
	mw, err := dispatch.Work(cluster, owner, del, dispatch.DeletionFields, dispatch.WithResource("backupdeletions"))
	if err != nil {
		return nil, err
	}
	mw.Labels[LabelLocation] = dispatch.LabelValue(loc.Name)
	return mw, nil
}

func dataPath(loc *fleetv1alpha1.BackupLocation, ts fleetv1alpha1.Tombstone) string {
	p := loc.Spec.Azure.Container + "/"
	if loc.Spec.Azure.Prefix != "" {
		p += loc.Spec.Azure.Prefix + "/"
	}
	return p + "lifeboat/v1/backups/" + ts.SourceCluster + "/" + ts.BackupID
}

func (r *Reconciler) event(loc *fleetv1alpha1.BackupLocation, eventtype, reason, msg string) {
	hubevents.Record(r.Recorder, loc, eventtype, reason, "Purge", msg)
}

// SetupWithManager watches BackupLocations (any change: a connection turning
// Valid lets a purge start) and the purge works (feedback).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupLocation{}).
		Watches(&workv1.ManifestWork{}, handler.EnqueueRequestsFromMapFunc(r.locationOfWork)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("tombstone").
		Complete(r)
}

// locationOfWork maps a purge work back to its BackupLocation.
func (r *Reconciler) locationOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	if l[dispatch.LabelKind] != Kind || l[dispatch.LabelNamespace] == "" || l[LabelLocation] == "" {
		return nil
	}
	list := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, list, client.InNamespace(l[dispatch.LabelNamespace])); err != nil {
		return nil
	}
	for i := range list.Items {
		if dispatch.LabelValue(list.Items[i].Name) == l[LabelLocation] {
			return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}}
		}
	}
	return nil
}
