package backup

import (
	"context"
	"encoding/json"
	"fmt"

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
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/execrule"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// feedback is what each ApplicationBackup reports back to the hub. The
// work agent reads paths with client-go's JSONPath, which has filters.
var feedback = append([]dispatch.Field{
	{Name: "stage", Path: ".status.stage"},
	{Name: "backupID", Path: ".status.backupID"},
	{Name: "expiration", Path: ".status.expiration"},
	{Name: "manifestSHA256", Path: ".status.manifestSHA256"},
}, dispatch.RunFields...)

// checkLocation returns true when the Backup's namespace may make it and its
// location is Valid on its cluster. Otherwise it fails the Backup with the
// reason, or, while the location is still validating there, leaves it
// Pending; both return false.
func (r *Reconciler) checkLocation(ctx context.Context, b *fleetv1alpha1.Backup, tenant *tenancy.Tenant) (bool, error) {
	if _, refused, err := execrule.Resolve(ctx, r.APIReader, b.Namespace, b.Spec.ExecRules); err != nil || refused != nil {
		if refused != nil {
			fail(ctx, b, refused.Reason, refused.Message)
		}
		return false, err
	}
	if refused := tenant.Backup(string(b.Spec.Cluster), b.Spec.Selection); refused != nil {
		fail(ctx, b, refused.Reason, refused.Message)
		return false, nil
	}
	v, err := locations.Check(ctx, r.APIReader, r.Client, b.Namespace, string(b.Spec.Location), string(b.Spec.Cluster))
	if err != nil {
		return false, err
	}
	switch v.State {
	case locations.Validating:
		setCondition(b, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, v.Reason, v.Message)
		return false, nil
	case locations.Unusable:
		fail(ctx, b, v.Reason, v.Message)
		return false, nil
	}
	return true, nil
}

// dispatchBackup applies the Backup's ManifestWork, unless the one on the hub
// already holds the same spec, and returns the work as the hub has it.
func (r *Reconciler) dispatchBackup(ctx context.Context, b *fleetv1alpha1.Backup, tenant *tenancy.Tenant) (*workv1.ManifestWork, error) {
	owner := dispatch.HubObject{Kind: Kind, Namespace: b.Namespace, Name: b.Name, UID: b.UID, Generation: b.Generation}
	hooks, err := r.hooks(ctx, b)
	if err != nil {
		return nil, err
	}
	mw, err := dispatch.Work(string(b.Spec.Cluster), owner, applicationBackup(b, tenant.Spoke(), hooks), feedback, dispatch.WithResource("applicationbackups"))
	if err != nil {
		return nil, reconcile.TerminalError(err)
	}
	applied, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	if err != nil {
		setCondition(b, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonDispatchFailed,
			fmt.Sprintf("the ApplicationBackup could not be sent to cluster %s: %v", b.Spec.Cluster, err))
		return nil, err
	}
	if applied {
		ctrl.LoggerFrom(ctx).Info("Dispatched ApplicationBackup", "cluster", b.Spec.Cluster, "work", mw.Name, "generation", b.Generation)
		if !dispatched(b) {
			metrics.Dispatched(Kind, b.CreationTimestamp.Time)
		}
	}
	setCondition(b, fleetv1alpha1.ConditionDispatched, metav1.ConditionTrue, fleetv1alpha1.ReasonDispatched,
		fmt.Sprintf("ApplicationBackup %s/%s was sent to cluster %s", SpokeNamespace, Name(b.Namespace, b.Name), b.Spec.Cluster))
	if b.Status.BackupID == "" {
		b.Status.BackupID = backupID(b)
	}
	return mw, nil
}

// hooks are the actions of the Backup's exec rules: as sent already, once
// the ApplicationBackup is on its way (its hooks are immutable, and an
// ExecRule edited since must not change a backup that has started), else as
// the rules say now.
func (r *Reconciler) hooks(ctx context.Context, b *fleetv1alpha1.Backup) (*backupv1alpha1.ExecHooks, error) {
	mw := &workv1.ManifestWork{}
	err := r.Get(ctx, client.ObjectKey{Namespace: string(b.Spec.Cluster), Name: dispatch.Name(Kind, b.Namespace, b.Name)}, mw)
	switch {
	case err == nil && len(mw.Spec.Workload.Manifests) > 0:
		sent := &backupv1alpha1.ApplicationBackup{}
		if err := json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, sent); err != nil {
			return nil, reconcile.TerminalError(fmt.Errorf("reading the ApplicationBackup sent in ManifestWork %s: %w", mw.Name, err))
		}
		return sent.Spec.Hooks, nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, err
	}
	hooks, refused, err := execrule.Resolve(ctx, r.APIReader, b.Namespace, b.Spec.ExecRules)
	if refused != nil {
		// The rule changed since checkLocation: try again, to fail the Backup there.
		return nil, fmt.Errorf("exec rules: %s", refused.Message)
	}
	return hooks, err
}

// applicationBackup is the spoke's copy of the Backup, held to tenancy, with
// the actions of its exec rules. Its backupID is the hub Backup's UID, so the
// data's folder is known before the run starts.
func applicationBackup(b *fleetv1alpha1.Backup, tenancy *backupv1alpha1.Tenancy, hooks *backupv1alpha1.ExecHooks) *backupv1alpha1.ApplicationBackup {
	return &backupv1alpha1.ApplicationBackup{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "ApplicationBackup"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(b.Namespace, b.Name),
			Namespace: SpokeNamespace,
			Labels: map[string]string{
				dispatch.LabelKind:      Kind,
				dispatch.LabelNamespace: dispatch.LabelValue(b.Namespace),
				dispatch.LabelName:      dispatch.LabelValue(b.Name),
				dispatch.LabelUID:       dispatch.LabelValue(string(b.UID)),
			},
		},
		Spec: backupv1alpha1.ApplicationBackupSpec{
			Target:    backupv1alpha1.ObjectName(backuplocation.TargetName(b.Namespace, string(b.Spec.Location))),
			BackupID:  backupID(b),
			Selection: b.Spec.Selection.DeepCopy(),
			Hooks:     hooks,
			Volumes:   b.Spec.Volumes,
			TTL:       b.Spec.TTL.DeepCopy(),
			Hub: &backupv1alpha1.HubObjectReference{
				Namespace: backupv1alpha1.NamespaceName(b.Namespace),
				Name:      backupv1alpha1.ObjectName(b.Name),
				UID:       b.UID,
			},
			Tenancy: tenancy,
		},
	}
}

func backupID(b *fleetv1alpha1.Backup) backupv1alpha1.BackupID {
	return backupv1alpha1.BackupID(b.UID)
}

// Name is the name of the ApplicationBackup that Backup namespace/name
// becomes on its cluster: "<namespace>-<name>-<hash>", DNS-1123, at most 63
// characters. The hash of namespace and name keeps team-a/x and team/a-x apart
// in lifeboat-system.
func Name(namespace, name string) string {
	return dispatch.SpokeName(namespace, name)
}
