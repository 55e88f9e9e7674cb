package restore

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// feedback is what each ApplicationRestore reports back to the hub. The work
// agent reads paths with client-go's JSONPath, which has filters.
var feedback = append(slices.Clone(dispatch.RunFields), dispatch.Field{Name: "log", Path: ".status.log"})

// source is what a restore reads from: the Backup, resolved, and the cluster
// to restore to.
type source struct {
	backup  *fleetv1alpha1.Backup
	cluster string
	// tenancy is what the spoke holds the restore to (nil for a fleet admin).
	tenancy *backupv1alpha1.Tenancy
}

// targetCluster is the cluster rs restores to: spec.cluster, or the cluster
// backup was taken on.
func targetCluster(rs *fleetv1alpha1.Restore, backup *fleetv1alpha1.Backup) string {
	if rs.Spec.Cluster != "" {
		return string(rs.Spec.Cluster)
	}
	return string(backup.Spec.Cluster)
}

// check returns the source when the Backup exists, ended in Success or
// PartialSuccess with a backup ID, the namespace's tenancy allows the
// restore, and its location is Valid on the target cluster. Otherwise it fails the Restore with the reason, or, while the
// location is still validating there, leaves it Pending; both return false.
func (r *Reconciler) check(ctx context.Context, rs *fleetv1alpha1.Restore) (source, bool, error) {
	b := &fleetv1alpha1.Backup{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: string(rs.Spec.Backup)}, b)
	if apierrors.IsNotFound(err) {
		fail(ctx, rs, fleetv1alpha1.ReasonBackupNotFound, fmt.Sprintf("Backup %q does not exist in namespace %s", rs.Spec.Backup, rs.Namespace))
		return source{}, false, nil
	}
	if err != nil {
		return source{}, false, err
	}
	cluster := targetCluster(rs, b)
	rs.Status.Cluster = backupv1alpha1.ClusterName(cluster)
	switch {
	case !b.Status.Phase.Restorable():
		phase := string(b.Status.Phase)
		if phase == "" {
			phase = "not started"
		}
		fail(ctx, rs, fleetv1alpha1.ReasonBackupNotRestorable,
			fmt.Sprintf("Backup %q is %s; only a Backup that ended in Success or PartialSuccess can be restored", b.Name, phase))
		return source{}, false, nil
	case b.Status.BackupID == "":
		fail(ctx, rs, fleetv1alpha1.ReasonBackupNotRestorable,
			fmt.Sprintf("Backup %q is %s but has no backupID, so its data cannot be found", b.Name, b.Status.Phase))
		return source{}, false, nil
	}
	tenant, err := r.Tenancy.Reading(r.APIReader).Tenant(ctx, rs.Namespace, cluster)
	if err != nil {
		return source{}, false, err
	}
	if refused := tenant.Restore(cluster, &rs.Spec.RestoreOptions, b.Spec.Selection); refused != nil {
		fail(ctx, rs, refused.Reason, refused.Message)
		return source{}, false, nil
	}
	v, err := locations.Check(ctx, r.APIReader, r.Client, rs.Namespace, string(b.Spec.Location), cluster)
	if err != nil {
		return source{}, false, err
	}
	switch v.State {
	case locations.Validating:
		setCondition(rs, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, v.Reason, v.Message)
		return source{}, false, nil
	case locations.Unusable:
		msg := v.Message
		if cluster != string(b.Spec.Cluster) {
			msg = fmt.Sprintf("cannot restore Backup %q of cluster %s to cluster %s: %s", b.Name, b.Spec.Cluster, cluster, msg)
		}
		fail(ctx, rs, v.Reason, msg)
		return source{}, false, nil
	}
	return source{backup: b, cluster: cluster, tenancy: tenant.Spoke()}, true, nil
}

// workKey is the key of rs's ManifestWork on cluster.
func workKey(rs *fleetv1alpha1.Restore, cluster string) client.ObjectKey {
	return client.ObjectKey{Namespace: cluster, Name: dispatch.Name(Kind, rs.Namespace, rs.Name)}
}

// sentWork returns the ManifestWork of a dispatched restore, nil when rs has
// not been dispatched or its work is gone (then it is sent again).
func (r *Reconciler) sentWork(ctx context.Context, rs *fleetv1alpha1.Restore) (*workv1.ManifestWork, error) {
	if !dispatched(rs) || rs.Status.Cluster == "" {
		return nil, nil
	}
	mw := &workv1.ManifestWork{}
	err := r.Get(ctx, workKey(rs, string(rs.Status.Cluster)), mw)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case !mw.DeletionTimestamp.IsZero():
		return nil, nil
	}
	return mw, nil
}

// dispatchRestore applies the Restore's ManifestWork on the target cluster,
// unless the one on the hub already holds the same spec, and returns the work
// as the hub has it.
func (r *Reconciler) dispatchRestore(ctx context.Context, rs *fleetv1alpha1.Restore, src source) (*workv1.ManifestWork, error) {
	owner := dispatch.HubObject{Kind: Kind, Namespace: rs.Namespace, Name: rs.Name, UID: rs.UID, Generation: rs.Generation}
	mw, err := dispatch.Work(src.cluster, owner, applicationRestore(rs, src), feedback, dispatch.WithResource("applicationrestores"))
	if err != nil {
		return nil, reconcile.TerminalError(err)
	}
	applied, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	if err != nil {
		setCondition(rs, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonDispatchFailed,
			fmt.Sprintf("the ApplicationRestore could not be sent to cluster %s: %v", src.cluster, err))
		return nil, err
	}
	if applied {
		ctrl.LoggerFrom(ctx).Info("Dispatched ApplicationRestore", "cluster", src.cluster, "backup", src.backup.Name,
			"sourceCluster", src.backup.Spec.Cluster, "work", mw.Name, "generation", rs.Generation)
		if !dispatched(rs) {
			metrics.Dispatched(Kind, rs.CreationTimestamp.Time)
		}
	}
	setCondition(rs, fleetv1alpha1.ConditionDispatched, metav1.ConditionTrue, fleetv1alpha1.ReasonDispatched,
		fmt.Sprintf("ApplicationRestore %s/%s was sent to cluster %s", SpokeNamespace, Name(rs.Namespace, rs.Name), src.cluster))
	return mw, nil
}

// applicationRestore is the spoke's copy of the Restore: it reads the
// backup's data (found by the backup's cluster and ID) through the spoke's
// BackupTarget for the backup's location, within the tenancy.
func applicationRestore(rs *fleetv1alpha1.Restore, src source) *backupv1alpha1.ApplicationRestore {
	b := src.backup
	return &backupv1alpha1.ApplicationRestore{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "ApplicationRestore"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(rs.Namespace, rs.Name),
			Namespace: SpokeNamespace,
			Labels: map[string]string{
				dispatch.LabelKind:      Kind,
				dispatch.LabelNamespace: dispatch.LabelValue(rs.Namespace),
				dispatch.LabelName:      dispatch.LabelValue(rs.Name),
				dispatch.LabelUID:       dispatch.LabelValue(string(rs.UID)),
			},
		},
		Spec: backupv1alpha1.ApplicationRestoreSpec{
			Target:         backupv1alpha1.ObjectName(backuplocation.TargetName(b.Namespace, string(b.Spec.Location))),
			Source:         backupv1alpha1.BackupSource{Cluster: b.Spec.Cluster, BackupID: b.Status.BackupID, ManifestSHA256: b.Status.ManifestSHA256},
			RestoreOptions: *rs.Spec.RestoreOptions.DeepCopy(),
			Hub: &backupv1alpha1.HubObjectReference{
				Namespace: backupv1alpha1.NamespaceName(rs.Namespace),
				Name:      backupv1alpha1.ObjectName(rs.Name),
				UID:       rs.UID,
			},
			Tenancy: src.tenancy,
		},
	}
}

// Name is the name of the ApplicationRestore that Restore namespace/name
// becomes on its target cluster: "<namespace>-<name>-<hash>", DNS-1123, at
// most 63 characters.
func Name(namespace, name string) string {
	return dispatch.SpokeName(namespace, name)
}
