package applicationrestore

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/commands"
	"github.com/lifeboat-dev/lifeboat/spoke/prebackuppods"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// restorePreBackupPod gives the output c of a PreBackupPod back: the
// PreBackupPod of that name in namespace (as the restore restored it, or
// as it was there) gets a pod made from its template, as config (the
// identity the restore writes as: a team's restore makes it as its
// requester), whose restoreCommand reads the output, streamed from the
// repository, on its standard input; the pod is deleted afterwards,
// whatever happened, by the spoke's own identity. A PreBackupPod that is
// not there or has no restoreCommand is an error: its output stays in the
// repository, and the restore is not a Success.
func (r *Reconciler) restorePreBackupPod(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, j *job, config *rest.Config, blobs volumes.Blobs,
	c archive.CommandOutput, namespace string) (string, error) {
	cl, err := client.New(config, client.Options{Scheme: r.Scheme()})
	if err != nil {
		return "", err
	}
	p := &backupv1alpha1.PreBackupPod{}
	stays := fmt.Sprintf("its output stays in snapshot %s of repository %s", c.Snapshot, c.Repository)
	switch err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: c.PreBackupPod}, p); {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("PreBackupPod %s/%s is not in the cluster (not restored): %s", namespace, c.PreBackupPod, stays)
	case err != nil:
		return "", fmt.Errorf("reading PreBackupPod %s/%s: %w", namespace, c.PreBackupPod, err)
	case len(p.Spec.RestoreCommand) == 0:
		return "", fmt.Errorf("PreBackupPod %s/%s has no restoreCommand: %s", namespace, c.PreBackupPod, stays)
	}
	source := j.reader.Manifest().SourceCluster
	rep, err := volumes.OpenNamed(ctx, blobs, source, c.Namespace, c.Repository, volumes.Password(j.target, j.key, source, c.Namespace))
	if err != nil {
		return "", err
	}
	defer rep.Close(context.WithoutCancel(ctx))
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		return "", err
	}
	remover, err := kubernetes.NewForConfig(r.RESTConfig)
	if err != nil {
		return "", err
	}
	pod, stop, err := prebackuppods.Start(ctx, kube, remover, p,
		prebackuppods.Run{Label: backupv1alpha1.RestoreRunLabel, UID: ar.UID, BackupID: j.reader.Manifest().BackupID})
	defer stop()
	if err != nil {
		return "", err
	}
	said, err := commands.RestoreOutput(ctx, config, rep, *pod, p.ContainerName(), p.Spec.RestoreCommand, c)
	if err != nil {
		return "", fmt.Errorf("pod %s/%s of PreBackupPod %s: %v", pod.Namespace, pod.Name, p.Name, err)
	}
	return fmt.Sprintf("pod %s/%s of PreBackupPod %s (deleted afterwards), %s", pod.Namespace, pod.Name, p.Name, said), nil
}

// sweepPreBackupPods deletes the pods made from PreBackupPods for restores
// that no longer run here (the spoke stopped while one ran); it runs when
// the manager starts (and leads).
func (r *Reconciler) sweepPreBackupPods(ctx context.Context) error {
	return prebackuppods.SweepAndLog(ctx, r.RESTConfig, backupv1alpha1.RestoreRunLabel, r.runs.runsUID, "restores")
}

// runsUID reports whether this process runs the restore of the ApplicationRestore with UID uid.
func (rs *runs) runsUID(uid types.UID) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, a := range rs.active {
		if a.uid == uid {
			return true
		}
	}
	return false
}
