package applicationbackup

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/prebackuppods"
)

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=prebackuppods,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=prebackuppods/status,verbs=get;patch

// backUpPreBackupPods runs, in the Volumes stage after the backup commands
// of annotated pods, the PreBackupPods found (see preBackupPods): for each, one at a time, a pod made from its template in
// its namespace, whose backupCommand's output goes into the repository as
// a backup command's does; the pod is deleted afterwards, whatever
// happened. A pod that does not become ready is skipped, naming the
// PreBackupPod. Without a VolumeMover no pod is made. The volumes policy is
// about claims: a PreBackupPod asks for its backup by being there.
func (r *Reconciler) backUpPreBackupPods(ctx context.Context, rn *run, st *statusWriter, store archive.Store, w *archive.Writer,
	found []*backupv1alpha1.PreBackupPod) ([]SkippedCommand, error) {
	if len(found) == 0 {
		return nil, nil
	}
	sources := make([]CommandSource, len(found))
	for i, p := range found {
		sources[i] = preBackupPodSource(p)
	}
	if r.VolumeData == nil {
		return r.backUpCommands(ctx, rn, st, store, w, sources)
	}
	kube, err := kubernetes.NewForConfig(r.RESTConfig)
	if err != nil {
		return nil, err
	}
	_ = r.sweepPreBackupPods(ctx)
	var skipped []SkippedCommand
	for i, p := range found {
		s, err := r.backUpPreBackupPod(ctx, rn, st, store, w, kube, p, sources[i])
		if err != nil {
			return nil, err
		}
		skipped = append(skipped, s...)
	}
	return skipped, nil
}

// backUpPreBackupPod runs one PreBackupPod and records how it went in its status.
func (r *Reconciler) backUpPreBackupPod(ctx context.Context, rn *run, st *statusWriter, store archive.Store, w *archive.Writer,
	kube kubernetes.Interface, p *backupv1alpha1.PreBackupPod, source CommandSource) ([]SkippedCommand, error) {
	var skipped []SkippedCommand
	var bytes int64 // of the output backed up
	pod, stop, err := prebackuppods.Start(ctx, kube, kube, p, prebackuppods.Run{Label: backupv1alpha1.BackupRunLabel, UID: rn.uid, BackupID: rn.id})
	if err != nil {
		stop()
		skipped = []SkippedCommand{{CommandSource: source, Reason: err.Error()}}
		w.Log(archive.LevelWarning, nil, fmt.Sprintf("Backup command output not backed up (%s): %s is not in the backup", err, source))
	} else {
		source.Pod = *pod
		before := st.volumeBytes.Load()
		skipped, err = r.backUpCommands(ctx, rn, st, store, w, []CommandSource{source})
		stop()
		if err != nil {
			return nil, err
		}
		bytes = st.volumeBytes.Load() - before
	}
	r.recordPreBackupPod(ctx, rn, p, skipped, bytes)
	return skipped, nil
}

// preBackupPods are the PreBackupPods of the namespaces the backup takes,
// sorted: those in the scope of its exec actions (a team's own namespace, a
// tenant's granted ones), as for the backup commands of annotated pods.
func (r *Reconciler) preBackupPods(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup) ([]*backupv1alpha1.PreBackupPod, error) {
	scope := hookScope(ab, rn.selfService)
	namespaces := scope.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var found []*backupv1alpha1.PreBackupPod
	for _, ns := range namespaces {
		if ns == "" && len(scope.Namespaces) > 0 {
			continue // named, all excluded
		}
		list := &backupv1alpha1.PreBackupPodList{}
		if err := r.APIReader.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing PreBackupPods: %w", err)
		}
		for i := range list.Items {
			if p := &list.Items[i]; scope.Allows(p.Namespace) && p.DeletionTimestamp == nil {
				found = append(found, p)
			}
		}
	}
	slices.SortFunc(found, func(a, b *backupv1alpha1.PreBackupPod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return found, nil
}

// preBackupPodSource is p's backup command, before its pod exists.
func preBackupPodSource(p *backupv1alpha1.PreBackupPod) CommandSource {
	s := CommandSource{Container: p.ContainerName(), Command: p.Spec.BackupCommand, File: p.Spec.FileName, PreBackupPod: p.Name}
	s.Pod.Namespace = p.Namespace
	return s
}

// recordPreBackupPod sets p's status.lastBackup to how this backup's use of
// it went; best effort: the backup's log and status are the record.
func (r *Reconciler) recordPreBackupPod(ctx context.Context, rn *run, p *backupv1alpha1.PreBackupPod, skipped []SkippedCommand, bytes int64) {
	last := backupv1alpha1.PreBackupPodRun{BackupID: backupv1alpha1.BackupID(rn.id), Time: metav1.NewTime(r.now()), Outcome: backupv1alpha1.ExecSucceeded, Bytes: bytes}
	if len(skipped) > 0 {
		last.Outcome, last.Message, last.Bytes = backupv1alpha1.ExecFailed, cut.Bytes(skipped[0].Reason, 1024), 0
	}
	body, err := json.Marshal(map[string]any{"status": backupv1alpha1.PreBackupPodStatus{LastBackup: &last}})
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
		defer cancel()
		err = r.Status().Patch(pctx, p, client.RawPatch(types.MergePatchType, body))
	}
	if err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("Could not record the run in the PreBackupPod's status", "prebackuppod", client.ObjectKeyFromObject(p), "error", err.Error())
	}
}

// statusPatchTimeout bounds a patch of a PreBackupPod's status.
const statusPatchTimeout = 10 * time.Second

// sweepPreBackupPods deletes the pods made from PreBackupPods for backups
// that no longer run here: a spoke that stopped while a backup ran one
// could not delete it. It runs when the manager starts (and leads) and
// before a backup makes pods of its own.
func (r *Reconciler) sweepPreBackupPods(ctx context.Context) error {
	return prebackuppods.SweepAndLog(ctx, r.RESTConfig, backupv1alpha1.BackupRunLabel, r.runsUID, "backups")
}

// runsUID reports whether this process runs a backup of the ApplicationBackup with UID uid.
func (r *Reconciler) runsUID(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rn := range r.running {
		if rn.uid == uid {
			return true
		}
	}
	return false
}
