package applicationbackup_test

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// commandPod creates a pod with the annotations in namespace, owned by
// owner if set, and gives it the status the kubelet would (the test's
// control plane runs no kubelet).
func (e *env) commandPod(namespace, name string, owner metav1.Object, ownerKind string, ready bool, annotations map[string]string) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "app"}, {Name: "sidecar", Image: "sidecar"},
		}},
	}
	if owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "default"}}
	if err := cp.Client.Create(e.ctx, sa); !apierrors.IsAlreadyExists(err) {
		e.g.Expect(err).NotTo(HaveOccurred())
	}
	e.g.Expect(cp.Client.Create(e.ctx, pod)).To(Succeed())
	pod.Status.Phase = corev1.PodRunning
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	e.g.Expect(cp.Client.Status().Update(e.ctx, pod)).To(Succeed())
}

// The backup commands run are those of the running, ready, annotated pods
// in the namespaces the backup takes, once per top controller (the first
// pod by name, its Deployment found through its ReplicaSet); a pod with a
// bad annotation is not run and makes the backup PartialSuccess, naming it.
func TestBackupCommandsComeFromPodAnnotations(t *testing.T) {
	e := newEnv(t)
	mover := &moverStandIn{}
	e.r.VolumeData = mover
	e.start()

	labels := map[string]string{"app": "db"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: "db"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}},
	}
	e.g.Expect(cp.Client.Create(e.ctx, deploy)).To(Succeed())
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: "db-5d8f", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "db", UID: deploy.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: deploy.Spec.Selector, Template: deploy.Spec.Template},
	}
	e.g.Expect(cp.Client.Create(e.ctx, rs)).To(Succeed())
	dump := map[string]string{backupv1alpha1.BackupCommandAnnotation: "pg_dump shop"}
	e.commandPod(e.app, "db-5d8f-b", rs, "ReplicaSet", true, dump)
	e.commandPod(e.app, "db-5d8f-a", rs, "ReplicaSet", true, dump)
	e.commandPod(e.app, "db-5d8f-0", rs, "ReplicaSet", false, dump) // not ready
	e.commandPod(e.app, "cache", nil, "", true, map[string]string{
		backupv1alpha1.BackupCommandAnnotation:   "redis-cli --rdb -",
		backupv1alpha1.BackupFileAnnotation:      "dump.rdb",
		backupv1alpha1.BackupContainerAnnotation: "sidecar",
	})
	e.commandPod(e.app, "web", nil, "", true, nil) // no command
	e.commandPod(e.app, "evil", nil, "", true, map[string]string{
		backupv1alpha1.BackupCommandAnnotation: "cat /etc/shadow",
		backupv1alpha1.BackupFileAnnotation:    "../../other-team/db.out",
	})
	other := "other-" + rand.String(5)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
	e.commandPod(other, "db", nil, "", true, dump) // not in the backup

	ab := e.backup(targets.SystemNamespace, "cmd-"+rand.String(4))
	e.g.Eventually(e.phase(ab)).Should(BeElementOf(backupv1alpha1.ApplicationBackupSuccess, backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ApplicationBackupFailed))
	got := e.get(ab)()
	c := condition(got, backupv1alpha1.ConditionCompleted)
	e.g.Expect(got.Status.Phase).To(Equal(backupv1alpha1.ApplicationBackupPartialSuccess), c.Message)
	e.g.Expect(c.Message).To(ContainSubstring("the output of 1 backup command not backed up: pod %s/evil file ../../other-team/db.out (annotation %s: must be a plain file name", e.app, backupv1alpha1.BackupFileAnnotation))

	type ran struct{ Pod, Owner, Container, File string }
	var sources []ran
	for _, s := range mover.commands {
		e.g.Expect(s.Command).To(HaveLen(3))
		e.g.Expect(s.Command[:2]).To(Equal([]string{"sh", "-c"}))
		e.g.Expect(s.PreBackupPod).To(BeEmpty())
		sources = append(sources, ran{s.Pod.Namespace + "/" + s.Pod.Name, s.Owner, s.Container, s.File})
	}
	e.g.Expect(sources).To(Equal([]ran{
		{e.app + "/cache", "", "sidecar", "dump.rdb"},
		{e.app + "/db-5d8f-a", "Deployment/db", "app", "db.out"},
	}))
	e.g.Expect(mover.commands[1].Command[2]).To(Equal("pg_dump shop"))
}
