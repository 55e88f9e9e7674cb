package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// Finalizer keeps a hub Backup until a cluster has deleted its data, or until
// it is force-deleted (ForceDeleteAnnotation).
const Finalizer = "fleet.lifeboat.dev/backup-data"

// DeletionKind is the kind dispatch labels a Backup's BackupDeletion works
// with (one per cluster it was sent to).
const DeletionKind = "BackupDeletion"

// deletingRecheck is how soon a deletion waiting for its cluster, or for a
// cluster with a Valid connection, is looked at again in case an event was missed.
const deletingRecheck = 30 * time.Second

// reconcileDelete deletes the Backup's data through a cluster with a Valid
// connection to its location and then lets the Backup go; see the Deleting
// condition for where it stands.
func (r *Reconciler) reconcileDelete(ctx context.Context, b *fleetv1alpha1.Backup) (_ ctrl.Result, retErr error) {
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		return ctrl.Result{}, nil
	}
	base := b.DeepCopy()
	released := false
	defer func() {
		if released {
			return
		}
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
		}
	}()

	if err := r.stopRun(ctx, b); err != nil {
		return ctrl.Result{}, err
	}
	if !hasData(b) {
		released = true
		return ctrl.Result{}, r.release(ctx, b, "ReleasedWithoutData", "the backup never wrote data; nothing to delete")
	}
	works, err := r.deletionWorks(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cluster, d, ok := completedDeletion(works, b.Generation); ok {
		if err := r.deleteWorks(ctx, works); err != nil {
			return ctrl.Result{}, err
		}
		released = true
		return ctrl.Result{}, r.release(ctx, b, fleetv1alpha1.ReasonDataDeleted,
			fmt.Sprintf("cluster %s deleted %d blobs of backup %s", cluster, d.BlobsDeleted, dataID(b)))
	}

	loc := &fleetv1alpha1.BackupLocation{}
	err = r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: string(b.Spec.Location)}, loc)
	switch {
	case apierrors.IsNotFound(err):
		loc = nil
	case err != nil:
		return ctrl.Result{}, err
	}
	cluster := ""
	if loc != nil {
		if cluster, err = locations.ValidCluster(ctx, r, loc, string(b.Spec.Cluster)); err != nil {
			return ctrl.Result{}, err
		}
	}
	if cluster == "" {
		if forced(b) {
			if err := r.forceDelete(ctx, b, loc); err != nil {
				return ctrl.Result{}, err
			}
			if err := r.deleteWorks(ctx, works); err != nil {
				return ctrl.Result{}, err
			}
			released = true
			return ctrl.Result{}, r.removeFinalizer(ctx, b)
		}
		r.deletePending(ctx, b, loc)
		return ctrl.Result{RequeueAfter: wait.Jitter(4*deletingRecheck, 0.1)}, nil
	}
	return r.deleteData(ctx, b, cluster, works)
}

// deleteData sends the BackupDeletion to cluster (dropping those sent to
// other clusters) and reports how it stands.
func (r *Reconciler) deleteData(ctx context.Context, b *fleetv1alpha1.Backup, cluster string, works map[string]*workv1.ManifestWork) (ctrl.Result, error) {
	others := map[string]*workv1.ManifestWork{}
	for c, mw := range works {
		if c != cluster {
			others[c] = mw
		}
	}
	if err := r.deleteWorks(ctx, others); err != nil {
		return ctrl.Result{}, err
	}
	if works[cluster] == nil {
		// A stale cache can still show a Backup that was just released, after
		// its deletion work is gone: never send a deletion for a Backup that
		// no longer waits for one.
		live := &fleetv1alpha1.Backup{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(b), live); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if live.UID != b.UID || !controllerutil.ContainsFinalizer(live, Finalizer) {
			return ctrl.Result{}, nil
		}
	}
	tenant, err := r.Tenancy.Tenant(ctx, b.Namespace, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	mw, err := deletionWork(b, cluster, tenant.Spoke())
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	applied, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	if err != nil {
		return ctrl.Result{}, err
	}
	if applied {
		ctrl.LoggerFrom(ctx).Info("Dispatched BackupDeletion", "cluster", cluster, "work", mw.Name, "backupID", dataID(b))
	}
	if st, ok := dispatch.Feedback(mw, b.Generation); ok {
		d, ok := dispatch.ReadDeletion(st)
		switch {
		case ok && d.Phase == backupv1alpha1.TaskFailed:
			r.setDeletePending(ctx, b, fleetv1alpha1.ReasonDeletionFailed, fmt.Sprintf(
				"cluster %s could not delete the data of backup %s: %s: %s", cluster, dataID(b), d.Reason, d.Message))
			return ctrl.Result{}, nil
		case ok && d.Phase == backupv1alpha1.TaskInProgress && d.Reason == backupv1alpha1.ReasonStorageError:
			r.setDeletionRetrying(b, fmt.Sprintf(
				"cluster %s failed on storage deleting the data of backup %s and retries (it validates its connection to BackupLocation %q again): %s",
				cluster, dataID(b), b.Spec.Location, d.Message))
			return ctrl.Result{RequeueAfter: wait.Jitter(deletingRecheck, 0.1)}, nil
		}
	}
	reason, msg := fleetv1alpha1.ReasonDeletingData, fmt.Sprintf("BackupDeletion %s/%s was sent to cluster %s to delete the data of backup %s",
		SpokeNamespace, Name(b.Namespace, b.Name), cluster, dataID(b))
	if forced(b) {
		reason = fleetv1alpha1.ReasonForceDeleteRefused
		msg = fmt.Sprintf("force delete refused: cluster %s has a Valid connection to BackupLocation %q, so the data is deleted normally; %s",
			cluster, b.Spec.Location, msg)
	}
	b.Status.Phase = fleetv1alpha1.BackupDeleting
	setCondition(b, fleetv1alpha1.ConditionDeleting, metav1.ConditionTrue, reason, msg)
	return ctrl.Result{RequeueAfter: wait.Jitter(deletingRecheck, 0.1)}, nil
}

// deletePending explains why no cluster can delete the data and how to force it.
func (r *Reconciler) deletePending(ctx context.Context, b *fleetv1alpha1.Backup, loc *fleetv1alpha1.BackupLocation) {
	force := fmt.Sprintf("To remove only the hub record and leave the data (the location keeps a tombstone and the data is purged once a cluster can reach it), run: kubectl annotate backup %s -n %s %s=true",
		b.Name, b.Namespace, fleetv1alpha1.ForceDeleteAnnotation)
	if loc == nil {
		r.setDeletePending(ctx, b, fleetv1alpha1.ReasonLocationNotFound, fmt.Sprintf(
			"BackupLocation %q does not exist, so no cluster can delete the data of backup %s. %s", b.Spec.Location, dataID(b), force))
		return
	}
	r.setDeletePending(ctx, b, fleetv1alpha1.ReasonNoValidCluster, fmt.Sprintf(
		"no cluster has a Valid connection to BackupLocation %q, so the data of backup %s cannot be deleted: %s. The deletion proceeds by itself as soon as one is Valid. %s",
		loc.Name, dataID(b), locations.DescribeConnections(loc), force))
}

func (r *Reconciler) setDeletePending(ctx context.Context, b *fleetv1alpha1.Backup, reason, msg string) {
	if b.Status.Phase != fleetv1alpha1.BackupDeletePending {
		ctrl.LoggerFrom(ctx).Info("Deletion of the backup's data is pending", "reason", reason, "message", msg)
		r.event(b, "Warning", reason, "Delete", msg)
	}
	b.Status.Phase = fleetv1alpha1.BackupDeletePending
	setCondition(b, fleetv1alpha1.ConditionDeleting, metav1.ConditionFalse, reason, msg)
}

// setDeletionRetrying records that the cluster's deletion failed on storage
// and is retried, with a Warning Event when that starts.
func (r *Reconciler) setDeletionRetrying(b *fleetv1alpha1.Backup, msg string) {
	if c := meta.FindStatusCondition(b.Status.Conditions, fleetv1alpha1.ConditionDeleting); c == nil || c.Reason != fleetv1alpha1.ReasonDeletionRetrying {
		r.event(b, "Warning", fleetv1alpha1.ReasonDeletionRetrying, "Delete", msg)
	}
	b.Status.Phase = fleetv1alpha1.BackupDeleting
	setCondition(b, fleetv1alpha1.ConditionDeleting, metav1.ConditionTrue, fleetv1alpha1.ReasonDeletionRetrying, msg)
}

// forceDelete records the data the hub forgets: an Event with its path and a
// tombstone on the location, so that a sync does not import it again and
// the data is purged once a cluster can reach it.
func (r *Reconciler) forceDelete(ctx context.Context, b *fleetv1alpha1.Backup, loc *fleetv1alpha1.BackupLocation) error {
	path := fmt.Sprintf("lifeboat/v1/backups/%s/%s (BackupLocation %q no longer exists)", b.Spec.Cluster, dataID(b), b.Spec.Location)
	if loc != nil {
		path = DataPath(loc, string(b.Spec.Cluster), string(dataID(b)))
		now := metav1.Now()
		ts := fleetv1alpha1.Tombstone{
			SourceCluster: string(b.Spec.Cluster), BackupID: string(dataID(b)),
			Backup: b.Name, BackupUID: b.UID, DeletionTime: &now,
		}
		added, err := AddTombstone(ctx, r.Client, r.APIReader, client.ObjectKeyFromObject(loc), ts)
		if err != nil {
			return err
		}
		if !added {
			msg := fmt.Sprintf("the hub record was force-deleted and the data was left at %s without a tombstone: BackupLocation %q already holds %d, the most it keeps. "+
				"A sync imports the backup again, and it can be deleted once a cluster has a Valid connection to the location", path, loc.Name, fleetv1alpha1.MaxTombstones)
			ctrl.LoggerFrom(ctx).Info("Force-deleted the backup without a tombstone", "path", path)
			r.event(b, "Warning", fleetv1alpha1.ReasonForceDeleted, "ForceDelete", msg)
			return nil
		}
	}
	msg := fmt.Sprintf("the hub record was force-deleted and the data was left at %s; it is purged once a cluster has a Valid connection to the location", path)
	ctrl.LoggerFrom(ctx).Info("Force-deleted the backup", "path", path)
	r.event(b, "Warning", fleetv1alpha1.ReasonForceDeleted, "ForceDelete", msg)
	return nil
}

// AddTombstone adds ts to the status of location key, unless it holds one
// for the same data (added is then true too) or already holds MaxTombstones
// (added is false). It patches with optimistic locking, so that tombstones
// written at the same time are not lost, and re-reads with reader on conflict.
func AddTombstone(ctx context.Context, c client.Client, reader client.Reader, key client.ObjectKey, ts fleetv1alpha1.Tombstone) (added bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		loc := &fleetv1alpha1.BackupLocation{}
		if err := reader.Get(ctx, key, loc); err != nil {
			return err
		}
		for _, t := range loc.Status.Tombstones {
			if t.SourceCluster == ts.SourceCluster && t.BackupID == ts.BackupID {
				added = true
				return nil
			}
		}
		if len(loc.Status.Tombstones) >= fleetv1alpha1.MaxTombstones {
			added = false
			return nil
		}
		patch := client.MergeFromWithOptions(loc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		loc.Status.Tombstones = append(loc.Status.Tombstones, ts)
		added = true
		return c.Status().Patch(ctx, loc, patch)
	})
	return added, err
}

// DataPath is where a backup's data lies, for a person:
// <container>/<prefix>/lifeboat/v1/backups/<cluster>/<backupID>.
func DataPath(loc *fleetv1alpha1.BackupLocation, cluster, backupID string) string {
	parts := []string{loc.Spec.Azure.Container}
	if p := strings.Trim(loc.Spec.Azure.Prefix, "/"); p != "" {
		parts = append(parts, p)
	}
	return strings.Join(append(parts, "lifeboat/v1/backups", cluster, backupID), "/")
}

// stopRun deletes the Backup's ApplicationBackup work: the work agent deletes
// the ApplicationBackup, and the spoke stops a running backup and deletes
// what it wrote. A finished backup's data stays (BackupDeletion deletes it).
func (r *Reconciler) stopRun(ctx context.Context, b *fleetv1alpha1.Backup) error {
	mw := &workv1.ManifestWork{}
	err := r.Get(ctx, client.ObjectKey{Namespace: string(b.Spec.Cluster), Name: dispatch.Name(Kind, b.Namespace, b.Name)}, mw)
	if apierrors.IsNotFound(err) || (err == nil && !mw.DeletionTimestamp.IsZero()) {
		return nil
	}
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(r.Delete(ctx, mw))
}

// deletionWorks are the Backup's BackupDeletion works by cluster.
func (r *Reconciler) deletionWorks(ctx context.Context, b *fleetv1alpha1.Backup) (map[string]*workv1.ManifestWork, error) {
	list := &workv1.ManifestWorkList{}
	owner := dispatch.HubObject{Kind: DeletionKind, Namespace: b.Namespace, Name: b.Name, UID: b.UID}
	if err := r.List(ctx, list, client.MatchingLabels(dispatch.Labels(owner))); err != nil {
		return nil, err
	}
	out := make(map[string]*workv1.ManifestWork, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Namespace] = &list.Items[i]
	}
	return out, nil
}

// completedDeletion finds a work whose BackupDeletion reported the data deleted.
func completedDeletion(works map[string]*workv1.ManifestWork, generation int64) (string, dispatch.Deletion, bool) {
	clusters := make([]string, 0, len(works))
	for c := range works {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	for _, c := range clusters {
		st, ok := dispatch.Feedback(works[c], generation)
		if !ok {
			continue
		}
		if d, ok := dispatch.ReadDeletion(st); ok && d.Phase == backupv1alpha1.TaskCompleted {
			return c, d, true
		}
	}
	return "", dispatch.Deletion{}, false
}

func (r *Reconciler) deleteWorks(ctx context.Context, works map[string]*workv1.ManifestWork) error {
	var errs []error
	for _, mw := range works {
		if mw.DeletionTimestamp.IsZero() {
			errs = append(errs, client.IgnoreNotFound(r.Delete(ctx, mw)))
		}
	}
	return kerrors.NewAggregate(errs)
}

// release lets the Backup go after its data was dealt with.
func (r *Reconciler) release(ctx context.Context, b *fleetv1alpha1.Backup, reason, msg string) error {
	if err := r.removeFinalizer(ctx, b); err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Deleted the backup", "reason", reason, "message", msg)
	r.event(b, "Normal", reason, "Delete", msg)
	return nil
}

func (r *Reconciler) removeFinalizer(ctx context.Context, b *fleetv1alpha1.Backup) error {
	before := b.DeepCopy()
	controllerutil.RemoveFinalizer(b, Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, b, client.MergeFrom(before)))
}

func (r *Reconciler) event(b *fleetv1alpha1.Backup, eventtype, reason, action, msg string) {
	hubevents.Record(r.Recorder, b, eventtype, reason, action, msg)
}

// deletionWork is the ManifestWork that sends cluster a BackupDeletion of the
// Backup's data. It is always forced: the hub Backup is the record of that
// data, so deleting it means the data goes whether or not the backup
// finished (a run that did not has no backup.json, which a normal deletion
// refuses), and a backup still running on that cluster is aborted first.
// tenancy (nil for a fleet admin) lets the spoke refuse data that belongs to
// another hub namespace.
func deletionWork(b *fleetv1alpha1.Backup, cluster string, tenancy *backupv1alpha1.Tenancy) (*workv1.ManifestWork, error) {
	owner := dispatch.HubObject{Kind: DeletionKind, Namespace: b.Namespace, Name: b.Name, UID: b.UID, Generation: b.Generation}
	del := &backupv1alpha1.BackupDeletion{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupDeletion"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(b.Namespace, b.Name),
			Namespace: SpokeNamespace,
			Labels:    dispatch.Labels(dispatch.HubObject{Kind: DeletionKind, Namespace: b.Namespace, Name: b.Name, UID: b.UID}),
		},
		Spec: backupv1alpha1.BackupDeletionSpec{
			Target: backupv1alpha1.ObjectName(backuplocation.TargetName(b.Namespace, string(b.Spec.Location))),
			Source: backupv1alpha1.BackupSource{Cluster: b.Spec.Cluster, BackupID: dataID(b), ManifestSHA256: b.Status.ManifestSHA256},
			Force:  true,
			Hub: &backupv1alpha1.HubObjectReference{
				Namespace: backupv1alpha1.NamespaceName(b.Namespace),
				Name:      backupv1alpha1.ObjectName(b.Name),
				UID:       b.UID,
			},
			Tenancy: tenancy,
		},
	}
	return dispatch.Work(cluster, owner, del, dispatch.DeletionFields, dispatch.WithResource("backupdeletions"))
}

// hasData is false for a Backup that never reached a cluster (failed before
// dispatch): there is nothing to delete.
func hasData(b *fleetv1alpha1.Backup) bool {
	return b.Status.BackupID != "" || dispatched(b)
}

// dataID is the backup's folder under its source cluster.
func dataID(b *fleetv1alpha1.Backup) backupv1alpha1.BackupID {
	if b.Status.BackupID != "" {
		return b.Status.BackupID
	}
	return backupID(b)
}

// forced is true when the user asked to remove the hub record without the data.
func forced(b *fleetv1alpha1.Backup) bool {
	return b.Annotations[fleetv1alpha1.ForceDeleteAnnotation] == "true"
}
