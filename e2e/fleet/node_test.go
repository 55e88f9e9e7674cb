package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
)

// probeResult is one line of lifeboat-podprobe's output.
type probeResult struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	User   string `json:"user"`
	Error  string `json:"error"`
}

// A pod on a fleet node reaches its own API server through in-cluster config
// (as its ServiceAccount), another cluster's API server, the blob proxy and
// the Entra stand-in, each verified by TLS; exec and logs work through the
// API server; and stopping the node leaves no container, shim, mount,
// network namespace, interface, iptables rule or cgroup behind.
func TestNodeRunsPodsThatReachTheFleet(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	imgs, err := TestImages(ctx, filepath.Join(dir, "images"))
	g.Expect(err).NotTo(HaveOccurred())

	cp, err := StartControlPlane(ctx, "nodetest", filepath.Join(dir, "cluster"), true)
	g.Expect(err).NotTo(HaveOccurred())
	defer cp.Stop()
	other, err := StartControlPlane(ctx, "nodetest-other", filepath.Join(dir, "other"), false)
	g.Expect(err).NotTo(HaveOccurred())
	defer other.Stop()
	azure, err := StartAzure(ctx, dir)
	g.Expect(err).NotTo(HaveOccurred())
	defer azure.Stop()

	start := time.Now()
	node, err := StartNode(ctx, cp, imgs.Pause, imgs.Probe, imgs.WorkloadIdentityWebhook)
	g.Expect(err).NotTo(HaveOccurred())
	stopped := false
	defer func() {
		if !stopped {
			node.Stop()
		}
	}()
	t.Logf("node %s Ready at %s in %s", node.Name, node.IP, time.Since(start).Round(time.Millisecond))

	// The Azure Workload Identity webhook, and an identity federated with the
	// probe's ServiceAccount.
	entraPort := urlPort(t, azure.Entra.URL())
	g.Expect(node.Expose(entraPort)).To(Succeed())
	authority := fmt.Sprintf("https://%s:%d/", HostAddress, entraPort)
	start = time.Now()
	g.Expect(InstallWorkloadIdentityWebhook(ctx, cp, imgs.WorkloadIdentityWebhook, TenantID, authority)).To(Succeed())
	t.Logf("workload identity webhook serving in %s", time.Since(start).Round(time.Millisecond))
	g.Expect(AllowIssuerDiscovery(ctx, cp)).To(Succeed())
	g.Expect(azure.Entra.TrustIssuerCA(cp.Issuer(), cp.CA.CertPEM())).To(Succeed())
	id, err := azure.NewIdentity("00000000-0000-0000-0000-0000000000a1")
	g.Expect(err).NotTo(HaveOccurred())
	const subject = "system:serviceaccount:default:probe"
	g.Expect(azure.Entra.AddFederatedCredential(TenantID, id.ClientID, entra.FederatedCredential{Name: "probe", Issuer: cp.Issuer(), Subject: subject})).To(Succeed())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default",
		Annotations: map[string]string{"azure.workload.identity/client-id": id.ClientID}}}
	g.Expect(cp.Client.Create(ctx, sa)).To(Succeed())

	targets := map[string]struct {
		url string
		ca  []byte
	}{
		"other-apiserver": {other.URL + "/version", other.CA.CertPEM()},
		"blob-proxy":      {azure.Proxy.URL() + "/", azure.Proxy.CACertPEM()},
		"entra":           {azure.Entra.URL() + "/" + TenantID + "/v2.0/.well-known/openid-configuration", azure.Entra.CACertPEM()},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe-ca", Namespace: "default"}, Data: map[string]string{}}
	args := []string{"--sleep", "--azure-scope=https://storage.azure.com/.default"}
	for name, tgt := range targets {
		u, err := url.Parse(tgt.url)
		g.Expect(err).NotTo(HaveOccurred())
		port := urlPort(t, tgt.url)
		g.Expect(node.Expose(port)).To(Succeed())
		u.Host = fmt.Sprintf("%s:%d", HostAddress, port)
		args = append(args, "--get", name+"="+u.String())
		cm.Data[name+".crt"] = string(tgt.ca)
	}
	g.Expect(cp.Client.Create(ctx, cm)).To(Succeed())
	pod := probePod(imgs.Probe.Ref, args)
	// Wait for the default ServiceAccount that the controller-manager makes.
	g.Eventually(func() error { return cp.Client.Create(ctx, pod) }, time.Minute, time.Second).Should(Succeed())

	cs, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	var results map[string]probeResult
	g.Eventually(func(g Gomega) {
		raw, err := cs.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		results = parseProbe(raw)
		g.Expect(results).To(HaveLen(2 + len(targets)))
	}, 2*time.Minute, time.Second).Should(Succeed(), func() string { return DescribePods(ctx, cp, "default") })
	t.Logf("probe results: %+v", results)

	g.Expect(results["in-cluster"].OK).To(BeTrue(), "in-cluster: %s", results["in-cluster"].Error)
	g.Expect(results["in-cluster"].User).To(Equal(subject))
	g.Expect(results["other-apiserver"]).To(Equal(probeResult{Check: "other-apiserver", OK: true, Status: 200}))
	g.Expect(results["entra"]).To(Equal(probeResult{Check: "entra", OK: true, Status: 200}))
	g.Expect(results["blob-proxy"].OK).To(BeTrue(), "blob proxy: %s", results["blob-proxy"].Error)

	// The webhook injected the identity; the kubelet projected the token; Entra
	// verified it against the cluster's issuer and exchanged it.
	g.Expect(results["azure-token"]).To(Equal(probeResult{Check: "azure-token", OK: true, User: id.ClientID}))
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
	g.Expect(pod.Spec.Volumes).To(ContainElement(HaveField("Name", HavePrefix("azure-workload-identity-reserved-"))), "the webhook projected the token")
	g.Expect(azure.Entra.Exchanges()).To(ContainElement(entra.Exchange{
		ClientID: id.ClientID, Issuer: cp.Issuer(), Subject: subject, Resource: "https://storage.azure.com"}))
	t.Logf("Entra exchanged an assertion of issuer %s, subject %s", cp.Issuer(), subject)

	// Exec runs through the API server and the node's kubelet.
	stdout, err := execIn(ctx, cp, pod.Name, "/lifeboat-podprobe")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(parseProbe(stdout)["in-cluster"].OK).To(BeTrue(), "exec output: %s", stdout)

	// What the node added is there while it runs, so the check below can fail.
	ids, err := node.Containers(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids).To(HaveLen(4), "sandbox and container of the probe and of the webhook")
	running := node.Leftovers()
	g.Expect(running).To(ContainElements(
		"interface "+node.bridge, "iptables nat chain "+node.chain, "iptables nat PREROUTING jump to "+node.chain))
	g.Expect(strings.Join(running, "\n")).To(And(ContainSubstring("mount "+node.Dir), ContainSubstring("process "), ContainSubstring("veth ")))

	node.Stop()
	stopped = true
	g.Expect(node.containers).To(ConsistOf(ids))
	g.Expect(node.veths).To(HaveLen(2), "one veth per pod")
	g.Expect(node.Leftovers()).To(BeEmpty(), "the node left something behind")
	for _, c := range cgroupControllers {
		for _, id := range ids {
			g.Expect(filepath.Join("/sys/fs/cgroup", c, containerdCgroupParent, id)).NotTo(BeAnExistingFile())
		}
	}
}

// probePod runs lifeboat-podprobe with args, its CAs mounted, as a non-root user.
func probePod(image string, args []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default", Labels: map[string]string{WorkloadIdentityLabel: "true"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "probe",
			RestartPolicy:      corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
				VolumeMounts:    []corev1.VolumeMount{{Name: "ca", MountPath: "/probe-ca"}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "ca", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "probe-ca"}},
			}}},
		},
	}
}

func parseProbe(raw []byte) map[string]probeResult {
	out := map[string]probeResult{}
	s := bufio.NewScanner(bytes.NewReader(raw))
	for s.Scan() {
		var r probeResult
		if json.Unmarshal(s.Bytes(), &r) == nil && r.Check != "" {
			out[r.Check] = r
		}
	}
	return out
}

func execIn(ctx context.Context, cp *ControlPlane, pod string, command ...string) ([]byte, error) {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, err
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewWebSocketExecutor(cp.Config, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return nil, fmt.Errorf("exec %v: %w: %s", command, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
