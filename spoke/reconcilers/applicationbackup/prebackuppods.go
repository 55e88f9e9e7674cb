package applicationbackup

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/prebackuppods"
)

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=prebackuppods,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=prebackuppods/status,verbs=get;patch

// sweepPreBackupPods deletes the pods made from PreBackupPods for backups
// that no longer run here: a spoke that stopped while a backup ran one
// could not delete it. It runs when the manager starts (and leads) and
// before a backup makes pods of its own.
func (r *Reconciler) sweepPreBackupPods(ctx context.Context) error {
	kube, err := kubernetes.NewForConfig(r.RESTConfig)
	if err != nil {
		return err
	}
	deleted, err := prebackuppods.Sweep(ctx, kube, backupv1alpha1.BackupRunLabel, r.runsUID)
	log := ctrl.LoggerFrom(ctx)
	if len(deleted) > 0 {
		log.Info("Deleted the pods of PreBackupPods left by backups that no longer run", "pods", deleted)
	}
	if err != nil {
		log.Error(err, "Could not delete the pods of PreBackupPods left by backups that no longer run")
	}
	return nil
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
