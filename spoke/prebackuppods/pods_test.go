package prebackuppods_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/prebackuppods"
)

var kube kubernetes.Interface

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(fleet.TestControlPlane{Name: "prebackuppods", Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		var err error
		kube, err = kubernetes.NewForConfig(c.Config)
		return err
	}}.RunTests(m))
}

// namespace makes a namespace with its default ServiceAccount (this control
// plane has no controller that would make it).
func namespace(t *testing.T, g *WithT) string {
	ns := "pbp-" + rand.String(6)
	ctx := context.Background()
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return ns
}

func dumper(ns string, timeout time.Duration) *backupv1alpha1.PreBackupPod {
	return &backupv1alpha1.PreBackupPod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dump", UID: types.UID(rand.String(8))},
		Spec: backupv1alpha1.PreBackupPodSpec{
			BackupCommand: []string{"pg_dump"}, FileName: "db.sql",
			ReadyTimeout: &metav1.Duration{Duration: timeout},
			Pod: backupv1alpha1.PreBackupPodTemplate{
				Metadata: backupv1alpha1.PodTemplateMetadata{
					Labels:      map[string]string{"app": "dump", backupv1alpha1.PreBackupPodLabel: "someone-else"},
					Annotations: map[string]string{"team": "shop"},
				},
				Spec: corev1.PodSpec{
					RestartPolicy:         corev1.RestartPolicyAlways,
					ActiveDeadlineSeconds: ptr.To[int64](7 * 24 * 3600),
					Containers:            []corev1.Container{{Name: "pg", Image: "postgres:17"}},
				},
			},
		},
	}
}

// podsOf lists the pods made from PreBackupPods in ns.
func podsOf(g *WithT, ns string) []corev1.Pod {
	list, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: backupv1alpha1.PreBackupPodLabel})
	g.Expect(err).NotTo(HaveOccurred())
	return list.Items
}

// markReady plays the kubelet: it marks the first pod made in ns ready.
func markReady(g *WithT, ns string) {
	ctx := context.Background()
	var pod corev1.Pod
	g.Eventually(func() []corev1.Pod { return podsOf(g, ns) }, 10*time.Second).Should(HaveLen(1))
	pod = podsOf(g, ns)[0]
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.0.0.7"
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	_, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, &pod, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
}

// The pod is the team's template with the spoke's labels over the
// template's, restartPolicy Never, a lifetime of at most a day, and the
// PreBackupPod as its owner; stop deletes it.
func TestStartMakesThePodFromTheTemplateAndStopDeletesIt(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t, g)
	p := dumper(ns, time.Minute)
	go markReady(g, ns)
	run := prebackuppods.Run{Label: backupv1alpha1.BackupRunLabel, UID: "run-uid-1", BackupID: "b-1"}
	pod, stop, err := prebackuppods.Start(context.Background(), kube, kube, p, run)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pod.GenerateName).To(Equal("dump-"))
	g.Expect(pod.Labels).To(Equal(map[string]string{"app": "dump", backupv1alpha1.PreBackupPodLabel: "dump",
		backupv1alpha1.BackupRunLabel: "run-uid-1", "app.kubernetes.io/managed-by": "lifeboat"}))
	g.Expect(pod.Annotations).To(Equal(map[string]string{"team": "shop", backupv1alpha1.BackupIDAnnotation: "b-1"}))
	g.Expect(pod.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
	g.Expect(*pod.Spec.ActiveDeadlineSeconds).To(Equal(int64(24 * 3600)))
	g.Expect(pod.OwnerReferences).To(ConsistOf(HaveField("UID", p.UID)))
	g.Expect(p.Spec.Pod.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyAlways), "the template is not changed")

	stop()
	g.Expect(podsOf(g, ns)).To(BeEmpty())
}

// A pod that is not ready within readyTimeout is an error that says so,
// and stop still deletes it, also when the run's context has ended.
func TestStartGivesUpOnAPodThatIsNotReady(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	_, stop, err := prebackuppods.Start(ctx, kube, kube, dumper(ns, time.Second), prebackuppods.Run{Label: backupv1alpha1.BackupRunLabel, UID: "u", BackupID: "b"})
	g.Expect(err).To(MatchError(And(ContainSubstring("of PreBackupPod "+ns+"/dump"), ContainSubstring("not ready after 1s"))))
	g.Expect(podsOf(g, ns)).To(HaveLen(1))
	cancel()
	stop()
	g.Expect(podsOf(g, ns)).To(BeEmpty())
}

// Sweep deletes the pods of runs that no longer run, of its own kind of
// run only, and leaves every other pod alone.
func TestSweepDeletesOnlyThePodsOfRunsThatEnded(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t, g)
	ctx := context.Background()
	create := func(label, uid string, fromPreBackupPod bool) string {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "p-", Namespace: ns, Labels: map[string]string{label: uid}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		if fromPreBackupPod {
			pod.Labels[backupv1alpha1.PreBackupPodLabel] = "dump"
		}
		p, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return ns + "/" + p.Name
	}
	ended := create(backupv1alpha1.BackupRunLabel, "ended", true)
	create(backupv1alpha1.BackupRunLabel, "running", true)
	create(backupv1alpha1.RestoreRunLabel, "ended", true)
	create(backupv1alpha1.BackupRunLabel, "ended", false)

	deleted, err := prebackuppods.Sweep(ctx, kube, backupv1alpha1.BackupRunLabel, func(uid types.UID) bool { return uid == "running" })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(deleted).To(ConsistOf(ended))
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list.Items).To(HaveLen(3))
	_, err = kube.CoreV1().Pods(ns).Get(ctx, ended[len(ns)+1:], metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}
