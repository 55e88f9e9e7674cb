// Package prebackuppods makes, waits for and removes the pods that
// PreBackupPods describe, for the backups and restores that run them.
package prebackuppods

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/pods"
)

// Lifetime bounds how long a pod made from a PreBackupPod lives
// (activeDeadlineSeconds): one the spoke could not delete ends by itself.
const Lifetime = 24 * time.Hour

// deleteTimeout bounds the deletion of a pod once its run is done with it.
const deleteTimeout = 30 * time.Second

// Run is the backup or restore a pod is made for.
type Run struct {
	// Label is backupv1alpha1.BackupRunLabel or RestoreRunLabel.
	Label string
	// UID is the UID of the ApplicationBackup or ApplicationRestore.
	UID types.UID
	// BackupID is the backup the pod's output goes into or comes from.
	BackupID string
}

// Start creates, through kube, a pod from p's template in p's namespace for
// run, and waits until it is ready (p's readyTimeout). stop deletes the pod
// through remover (the spoke's own identity, which may delete pods where
// the identity a restore writes as may not), also when ctx has ended; call
// it always, whatever Start returned.
func Start(ctx context.Context, kube, remover kubernetes.Interface, p *backupv1alpha1.PreBackupPod, run Run) (pod *corev1.Pod, stop func(), err error) {
	created, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, podFor(p, run), metav1.CreateOptions{})
	if err != nil {
		return nil, func() {}, fmt.Errorf("creating the pod of PreBackupPod %s/%s: %w", p.Namespace, p.Name, err)
	}
	stop = func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		_ = deletePod(dctx, remover, created)
	}
	ready, err := pods.WaitReady(ctx, kube, p.Namespace, created.Name, p.ReadyWait())
	if err != nil {
		return nil, stop, fmt.Errorf("pod %s of PreBackupPod %s/%s: %w", created.Name, p.Namespace, p.Name, err)
	}
	return ready, stop, nil
}

// podFor is the pod p's template makes for run: the template's labels and
// annotations and spec, with the spoke's labels, restartPolicy Never, a
// bounded lifetime and p as its owner (so deleting p deletes it too).
func podFor(p *backupv1alpha1.PreBackupPod, run Run) *corev1.Pod {
	labels := maps.Clone(p.Spec.Pod.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[backupv1alpha1.PreBackupPodLabel] = p.Name
	labels[run.Label] = string(run.UID)
	labels["app.kubernetes.io/managed-by"] = "lifeboat"
	annotations := maps.Clone(p.Spec.Pod.Metadata.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[backupv1alpha1.BackupIDAnnotation] = run.BackupID
	spec := p.Spec.Pod.Spec.DeepCopy()
	spec.RestartPolicy = corev1.RestartPolicyNever
	if limit := int64(Lifetime / time.Second); spec.ActiveDeadlineSeconds == nil || *spec.ActiveDeadlineSeconds > limit {
		spec.ActiveDeadlineSeconds = ptr.To(limit)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: p.Name + "-", Namespace: p.Namespace,
			Labels: labels, Annotations: annotations,
		},
		Spec: *spec,
	}
	if p.UID != "" {
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "PreBackupPod", Name: p.Name, UID: p.UID}}
	}
	return pod
}

// Sweep deletes, in every namespace, the pods made from PreBackupPods for
// runs of label (BackupRunLabel or RestoreRunLabel) that running says are
// no longer running: pods a spoke that stopped could not delete. It
// returns the pods it deleted, as namespace/name.
func Sweep(ctx context.Context, kube kubernetes.Interface, label string, running func(types.UID) bool) ([]string, error) {
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: backupv1alpha1.PreBackupPodLabel + "," + label})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of PreBackupPods: %w", err)
	}
	var deleted []string
	for i := range list.Items {
		p := &list.Items[i]
		if running(types.UID(p.Labels[label])) {
			continue
		}
		if err := deletePod(ctx, kube, p); err != nil {
			return deleted, err
		}
		deleted = append(deleted, p.Namespace+"/"+p.Name)
	}
	return deleted, nil
}

// SweepAndLog is Sweep through config's identity, once the manager leads;
// it logs what it deleted and what it could not, and never fails the
// manager. runs says whose pods they are, e.g. "backups".
func SweepAndLog(ctx context.Context, config *rest.Config, label string, running func(types.UID) bool, runs string) error {
	log := ctrl.LoggerFrom(ctx)
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		log.Error(err, "Could not delete the pods of PreBackupPods left by "+runs+" that no longer run")
		return nil
	}
	deleted, err := Sweep(ctx, kube, label, running)
	if len(deleted) > 0 {
		log.Info("Deleted the pods of PreBackupPods left by "+runs+" that no longer run", "pods", deleted)
	}
	if err != nil {
		log.Error(err, "Could not delete the pods of PreBackupPods left by "+runs+" that no longer run")
	}
	return nil
}

// deletePod deletes p at once; one already gone is no error.
func deletePod(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) error {
	err := kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
