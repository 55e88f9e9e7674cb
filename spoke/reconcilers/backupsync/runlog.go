package backupsync

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// maxLogError bounds the reason a log page gives for having no log.
const maxLogError = 1024

// RunLogs runs spoke RunLogs: each reads one run's log from its target's
// bucket (the backup's log.jsonl.gz, or a restore's log in the backup's
// restores/ folder, never another path) and writes its end, at most
// spec.maxBytes, as the catalog page fleetv1alpha1.LogPageName into this cluster's
// namespace on the hub. It shares the sync's target, store and hub access.
type RunLogs struct {
	*Reconciler
}

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=runlogs,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=runlogs/status,verbs=get;update;patch

// Reconcile reads the log once and writes the page; a log that cannot be
// read is answered with a page that says why. Only hub errors are retried.
func (r *RunLogs) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rl := &backupv1alpha1.RunLog{}
	if err := r.Get(ctx, req.NamespacedName, rl); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rl.Status.Phase == backupv1alpha1.TaskCompleted || rl.Status.Phase == backupv1alpha1.TaskFailed || !rl.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(rl.DeepCopy())
	page, reason, err := r.read(ctx, rl)
	if err != nil {
		return ctrl.Result{}, err
	}
	page.RunLog = rl.Spec.Hub
	hub, err := r.Hub(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	obj := &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Cluster,
			Name:      fleetv1alpha1.LogPageName(rl.Name),
			Labels:    map[string]string{fleetv1alpha1.LabelRunLogUID: labelValue(string(rl.Spec.Hub.UID))},
		},
		Spec: fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(r.Cluster), Log: page},
	}
	if err := put(ctx, hub, obj); err != nil {
		return ctrl.Result{}, fmt.Errorf("write log page %s/%s to the hub: %w", obj.Namespace, obj.Name, err)
	}
	phase, msg := backupv1alpha1.TaskCompleted, fmt.Sprintf("sent %d of the log's %d bytes to the hub", len(page.Text), page.SizeBytes)
	if page.Error != "" {
		phase, msg = backupv1alpha1.TaskFailed, page.Error
	}
	rl.Status.Phase, rl.Status.ObservedGeneration = phase, rl.Generation
	for _, typ := range []string{backupv1alpha1.ConditionReady, backupv1alpha1.ConditionCompleted} {
		status := metav1.ConditionTrue
		if typ == backupv1alpha1.ConditionReady && phase == backupv1alpha1.TaskFailed {
			status = metav1.ConditionFalse
		}
		meta.SetStatusCondition(&rl.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: rl.Generation})
	}
	ctrl.LoggerFrom(ctx).Info("Sent a run's log to the hub", "kind", rl.Spec.Kind, "phase", phase, "bytes", len(page.Text))
	return ctrl.Result{}, r.Status().Patch(ctx, rl, patch)
}

// read reads the log rl names. What keeps it from being read (a refused
// target, a path outside the backup's restore logs, a missing or damaged
// log, a storage failure) is the page's error; only read errors of this
// cluster's API server are returned.
func (r *RunLogs) read(ctx context.Context, rl *backupv1alpha1.RunLog) (*fleetv1alpha1.LogPage, string, error) {
	reason := backupv1alpha1.ReasonInvalidConfiguration
	fail := func(err error) (*fleetv1alpha1.LogPage, string, error) {
		return &fleetv1alpha1.LogPage{Error: cut.Bytes(err.Error(), maxLogError)}, reason, nil
	}
	target, err := targets.Resolve(ctx, r.Client, targets.SystemNamespace, string(rl.Spec.Target), nil)
	if refusal := (*targets.Refusal)(nil); errors.As(err, &refusal) {
		return fail(errors.New(refusal.Message))
	} else if err != nil {
		return nil, "", err
	}
	store, err := r.store(target)
	if err != nil {
		return fail(err)
	}
	dir, err := archive.Path("", string(rl.Spec.Source.Cluster), string(rl.Spec.Source.BackupID))
	if err != nil {
		return fail(err)
	}
	name := dir + "/" + archive.LogFile
	if rl.Spec.Kind == backupv1alpha1.RunRestore {
		if err := archive.CheckRestoreLogPath(dir, rl.Spec.RestoreLog); err != nil {
			return fail(err)
		}
		name = rl.Spec.RestoreLog
	}
	maxBytes := int(rl.Spec.MaxBytes)
	if maxBytes <= 0 || maxBytes > backupv1alpha1.MaxRunLogBytes {
		maxBytes = backupv1alpha1.DefaultRunLogBytes
	}
	key, err := r.Targets.Key(ctx, target)
	if refusal := (*targets.Refusal)(nil); errors.As(err, &refusal) {
		reason = refusal.Reason
		return fail(errors.New(refusal.Message))
	} else if err != nil {
		return nil, "", err
	}
	reason = backupv1alpha1.ReasonStorageError
	text, truncated, size, err := archive.LogTail(ctx, store, name, maxBytes, key)
	if errors.Is(err, archive.ErrKeyMissing) || errors.Is(err, archive.ErrKeyMismatch) {
		reason = backupv1alpha1.ReasonEncryptionKeyMismatch
		if errors.Is(err, archive.ErrKeyMissing) {
			reason = backupv1alpha1.ReasonEncryptionKeyMissing
		}
		return fail(err)
	}
	if errors.Is(err, archive.ErrNotFound) {
		return fail(fmt.Errorf("there is no log at %s in the bucket", name))
	}
	if err != nil {
		return fail(err)
	}
	return &fleetv1alpha1.LogPage{Text: text, Truncated: truncated, SizeBytes: size}, backupv1alpha1.ReasonSucceeded, nil
}

// SetupWithManager watches RunLogs.
func (r *RunLogs) SetupWithManager(mgr ctrl.Manager) error {
	if r.Reconciler == nil || r.Hub == nil {
		return fmt.Errorf("runlogs: no hub client")
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.RunLog{}).
		Named("runlog").
		Complete(r)
}
