package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/images"
	spokecrds "github.com/lifeboat-dev/lifeboat/spoke/crds"
)

// The lifeboat-hub chart, installed with Helm on a cluster that has OCM's hub
// CRDs, runs the hub manager as a pod that becomes Ready as ServiceAccount
// lifeboat-hub, with the chart's CRDs established, and that no API request of
// the manager is forbidden: the chart's RBAC is all the hub needs.
func TestHubChartInstallsARunningHub(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()

	start := time.Now()
	built, err := images.Build(ctx, images.Options{Root: RepoRoot(), Out: filepath.Join(dir, "images"), Images: []images.Image{images.Pause, images.Hub}})
	g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]PodImage{}
	for _, b := range built {
		byName[b.Name] = PodImage{Ref: b.Ref, Tarball: b.Path}
	}
	pause, hub := byName[images.Pause.Name], byName[images.Hub.Name]
	g.Expect(pause.Tarball).NotTo(BeEmpty())
	g.Expect(hub.Tarball).NotTo(BeEmpty())
	t.Logf("images built in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	cp, err := StartControlPlane(ctx, "hubpod", filepath.Join(dir, "cluster"), true)
	g.Expect(err).NotTo(HaveOccurred())
	defer cp.Stop()
	// What the chart expects of its cluster: OCM's cluster manager, here its
	// hub CRDs (ManagedCluster, ManifestWork...).
	ocm, err := ocmCRDFiles(ocmHubCRDs)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(InstallCRDs(ctx, cp.Client, ocm...)).To(Succeed())
	node, err := StartNode(ctx, cp, pause, hub)
	g.Expect(err).NotTo(HaveOccurred())
	defer node.Stop()
	t.Logf("control plane and node %s Ready in %s", node.Name, time.Since(start).Round(time.Millisecond))

	cs, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	const releaseName = "lifeboat-hub"
	values := map[string]any{
		"image": map[string]any{"ref": hub.Ref, "pullPolicy": string(corev1.PullNever)},
	}
	diagnose := func() string { return DescribePods(ctx, cp, HubNamespace) + managerLogs(ctx, cs) }

	start = time.Now()
	installCtx, cancelInstall := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelInstall()
	g.Expect(HelmInstall(installCtx, cp, charts.Hub, HubNamespace, releaseName, values)).To(Succeed(), diagnose)
	installed := time.Since(start)

	// Helm waited for the Deployment: its pod runs the built image as the
	// chart's ServiceAccount, and is Ready.
	pod := hubPod(ctx, g, cp)
	g.Expect(pod.Spec.ServiceAccountName).To(Equal("lifeboat-hub"))
	g.Expect(pod.Spec.Containers).To(ConsistOf(HaveField("Image", hub.Ref)))
	g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
	g.Expect(pod.Status.Conditions).To(ContainElement(And(
		HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))), diagnose)
	ready := readySince(pod)
	// The Ready condition's time has a resolution of a second.
	t.Logf("helm install returned in %s; pod %s Ready %s after the install started", installed.Round(time.Millisecond),
		pod.Name, ready.Sub(start).Round(time.Second))

	// The release is recorded as deployed, as `helm status` shows it.
	cfg, err := helmConfiguration(cp, HubNamespace, func(string, ...any) {})
	g.Expect(err).NotTo(HaveOccurred())
	rel, err := action.NewStatus(cfg).Run(releaseName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rel.Info.Status).To(Equal(release.StatusDeployed))
	g.Expect(rel.Chart.Metadata.Name).To(Equal(charts.Hub))

	// Helm installed the chart's CRDs (this test installed only OCM's).
	files, err := CRDFiles(filepath.Join(RepoRoot(), hubCRDs))
	g.Expect(err).NotTo(HaveOccurred())
	crds, err := readCRDFiles(files)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crds).To(HaveLen(len(files)))
	for _, want := range crds {
		g.Expect(want.Spec.Group).To(Equal("fleet.lifeboat.dev"))
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: want.Name}, crd)).To(Succeed())
		g.Expect(spokecrds.Established(crd)).To(BeTrue(), "CRD %s established", crd.Name)
	}

	// Give the manager time to win its lease, start its controllers and list
	// what they watch; it is still Ready, has not restarted, and nothing it
	// asked the API server for was forbidden.
	time.Sleep(time.Until(ready.Add(10 * time.Second)))
	pod = hubPod(ctx, g, cp)
	g.Expect(pod.Status.ContainerStatuses).To(ConsistOf(And(
		HaveField("Ready", true), HaveField("RestartCount", BeZero()), HaveField("State.Running", Not(BeNil())))), diagnose)
	raw, err := cs.CoreV1().Pods(HubNamespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "manager"}).DoRaw(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	log := string(raw)
	lower := strings.ToLower(log)
	g.Expect(strings.Contains(lower, "successfully acquired lease")).To(BeTrue(), "the manager leads; its log:\n%s", log)
	g.Expect(strings.Contains(lower, "starting workers")).To(BeTrue(), "the manager's controllers started; its log:\n%s", log)
	// A controller whose cache cannot list what it watches starts no workers.
	g.Expect(strings.Count(log, "Starting workers")).To(Equal(strings.Count(log, "Starting Controller")),
		"every controller started its workers; the manager's log:\n%s", log)
	g.Expect(strings.Contains(lower, "forbidden")).To(BeFalse(), "a request of the manager was forbidden; its log:\n%s", log)
	t.Logf("manager log: %d lines, %d controllers started workers", strings.Count(log, "\n"), strings.Count(log, "Starting workers"))
}

// hubPod is the one pod of the hub's Deployment.
func hubPod(ctx context.Context, g Gomega, cp *ControlPlane) *corev1.Pod {
	pods := &corev1.PodList{}
	g.Expect(cp.Client.List(ctx, pods, client.InNamespace(HubNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "lifeboat-hub"})).To(Succeed())
	g.Expect(pods.Items).To(HaveLen(1))
	return &pods.Items[0]
}

// readySince is when pod last became Ready.
func readySince(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// managerLogs are the current and previous logs of the hub's manager
// containers, for a failure message.
func managerLogs(ctx context.Context, cs kubernetes.Interface) string {
	pods, err := cs.CoreV1().Pods(HubNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=lifeboat-hub"})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, previous := range []bool{true, false} {
			raw, err := cs.CoreV1().Pods(HubNamespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "manager", Previous: previous}).DoRaw(ctx)
			if err == nil {
				fmt.Fprintf(&b, "log of %s (previous=%t):\n%s\n", p.Name, previous, raw)
			}
		}
	}
	return b.String()
}
