package volumes

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// moverPod starts a mover for namespace/claim with the target's settings and
// returns its pod as the API server stored it. No kubelet runs here, so the
// mover never becomes ready: Start gives up after a few seconds and deletes it.
func moverPod(t *testing.T, g Gomega, kube kubernetes.Interface, target *backupv1alpha1.BackupTarget, namespace, claim string, write bool) corev1.Pod {
	t.Helper()
	m := &Movers{Kube: kube, Settings: PodSettings{Image: "lifeboat:test"}, Timeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		_, stop, err := m.For(target).Start(context.Background(), namespace, claim, write)
		stop()
		done <- err
	}()
	var pod corev1.Pod
	g.Eventually(func(g Gomega) {
		select {
		case err := <-done:
			StopTrying("Start ended before its pod was seen").Wrap(err).Now()
		default:
		}
		pods, err := kube.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: MoverLabel})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods.Items).To(HaveLen(1))
		pod = pods.Items[0]
	}).WithTimeout(5 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	g.Expect(<-done).To(MatchError(ContainSubstring("not ready after")))
	g.Eventually(func() ([]corev1.Pod, error) {
		pods, err := kube.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: MoverLabel})
		return pods.Items, err
	}).WithTimeout(10 * time.Second).Should(BeEmpty())
	return pod
}

// The mover pods of a target run as its moverSettings say: the API server
// (with its Priority admission) accepts them and stores them as set.
func TestMoverPodsTakeTheTargetsSettings(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	kube, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kube.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "backup-low"}, Value: -10}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	// No controller-manager makes the namespace's default service account.
	_, err = kube.CoreV1().ServiceAccounts("payments").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	target := &backupv1alpha1.BackupTarget{Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{
		MoverSettings: &backupv1alpha1.MoverSettings{
			Resources: &backupv1alpha1.MoverResources{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
			NodeSelector: map[string]backupv1alpha1.LabelValue{"lifeboat.dev/pool": "backup"},
			Tolerations: []backupv1alpha1.MoverToleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)},
			},
			PriorityClassName: "backup-low",
		},
	}}}

	// A restore's mover (and a backup's of a claim no running pod mounts)
	// is scheduled by the settings.
	pod := moverPod(t, g, kube, target, "payments", "data", true)
	g.Expect(pod.Spec.Containers[0].Resources).To(Equal(corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}))
	g.Expect(pod.Spec.NodeSelector).To(Equal(map[string]string{"lifeboat.dev/pool": "backup"}))
	g.Expect(pod.Spec.Tolerations).To(ContainElements(
		corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule},
		corev1.Toleration{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)},
	))
	g.Expect(pod.Spec.PriorityClassName).To(Equal("backup-low"))
	g.Expect(pod.Spec.Priority).To(Equal(ptr.To[int32](-10)), "the Priority admission resolved the class")
	g.Expect(pod.Spec.NodeName).To(BeEmpty())

	// A backup's mover of a claim that a running pod mounts goes to that
	// pod's node, where a node selector could only make the kubelet refuse it.
	app, err := kube.CoreV1().Pods("payments").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: corev1.PodSpec{NodeName: "node-7", Containers: []corev1.Container{{Name: "app", Image: "app"}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	app.Status.Phase = corev1.PodRunning
	_, err = kube.CoreV1().Pods("payments").UpdateStatus(ctx, app, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	pod = moverPod(t, g, kube, target, "payments", "data", false)
	g.Expect(pod.Spec.NodeName).To(Equal("node-7"))
	g.Expect(pod.Spec.NodeSelector).To(BeEmpty())
	g.Expect(pod.Spec.Tolerations).To(ContainElement(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule}))
	g.Expect(pod.Spec.PriorityClassName).To(Equal("backup-low"))
	g.Expect(pod.Spec.Containers[0].Resources.Limits).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("1Gi")))

	// A target without settings leaves the spoke's own.
	pod = moverPod(t, g, kube, &backupv1alpha1.BackupTarget{}, "payments", "other", true)
	g.Expect(pod.Spec.NodeSelector).To(BeEmpty())
	g.Expect(pod.Spec.PriorityClassName).To(BeEmpty())
	g.Expect(pod.Spec.Containers[0].Resources).To(Equal(corev1.ResourceRequirements{}))
}
