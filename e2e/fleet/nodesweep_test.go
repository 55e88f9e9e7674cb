package fleet

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// killedNodeDir, when set, makes TestKilledNodeIsSweptByTheNext the child
// that starts a node in that directory and waits to be killed.
const killedNodeDir = "LIFEBOAT_TEST_KILLED_NODE_DIR"

// A node whose process is killed (SIGKILL: no deferred Stop runs) leaves its
// container processes, shims, mounts, veths, bridge, NAT chain and cgroups
// on the host; the next node started on the host (SweepDeadNodes) removes
// all of them and the node's directory, and leaves running nodes alone.
func TestKilledNodeIsSweptByTheNext(t *testing.T) {
	if dir := os.Getenv(killedNodeDir); dir != "" {
		runNodeUntilKilled(t, dir)
		return
	}
	g := NewWithT(t)
	dir := t.TempDir()
	t.Cleanup(func() { SweepDeadNodes() }) // before TempDir's removal, should the test fail

	log, err := os.Create(filepath.Join(dir, "child.log"))
	g.Expect(err).NotTo(HaveOccurred())
	defer log.Close()
	child := exec.Command(os.Args[0], "-test.run=^TestKilledNodeIsSweptByTheNext$", "-test.v", "-test.timeout=10m")
	child.Env = append(os.Environ(), killedNodeDir+"="+dir)
	child.Stdout, child.Stderr = log, log
	g.Expect(child.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	childLog := func() string { raw, _ := os.ReadFile(log.Name()); return string(raw) }

	ready := filepath.Join(dir, "ready")
	g.Eventually(func(g Gomega) {
		select {
		case err := <-exited:
			StopTrying("the child exited before its node was ready: " + errString(err)).Now()
		default:
		}
		g.Expect(ready).To(BeAnExistingFile())
	}, 5*time.Minute, time.Second).Should(Succeed(), childLog)

	r := recordOf(g, child.Process.Pid)
	g.Expect(child.Process.Kill()).To(Succeed())
	<-exited
	g.Expect(r.owned()).To(BeFalse())

	// What the killed node left on the host, so the checks below can fail.
	dead := &Node{Dir: r.Dir, bridge: r.Bridge, ifindex: r.Ifindex, chain: r.Chain, socket: r.Socket, apiPort: r.APIPort}
	dead.containers = dead.stateContainers()
	g.Expect(dead.containers).To(HaveLen(2), "the pod's sandbox and container")
	var pids []int
	for _, id := range dead.containers {
		raw, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", containerdCgroupParent, id, "cgroup.procs"))
		for _, f := range strings.Fields(string(raw)) {
			pid, err := strconv.Atoi(f)
			g.Expect(err).NotTo(HaveOccurred())
			pids = append(pids, pid)
		}
	}
	g.Expect(pids).NotTo(BeEmpty(), "the pod's processes outlive the killed node")
	left := dead.Leftovers()
	t.Logf("the killed node left %d things: %v", len(left), left)
	g.Expect(left).To(ContainElements("interface "+r.Bridge, "iptables nat chain "+r.Chain))
	g.Expect(strings.Join(left, "\n")).To(And(ContainSubstring("mount "+r.Dir), ContainSubstring("process "), ContainSubstring("cgroup ")))

	g.Expect(SweepDeadNodes()).To(ContainElement(r.Bridge))
	dead.veths = nil // Leftovers looks at the bridge's ports, gone with it
	g.Expect(dead.Leftovers()).To(BeEmpty(), "the sweep left something of the killed node")
	for _, pid := range pids {
		g.Expect(alive(pid)).To(BeFalse(), "container process %d survived the sweep", pid)
	}
	g.Expect(r.Dir).NotTo(BeADirectory())
	g.Expect(filepath.Join(nodesDir(), r.Bridge+".json")).NotTo(BeAnExistingFile())
}

// recordOf reads the node record that process pid wrote.
func recordOf(g Gomega, pid int) nodeRecord {
	entries, err := os.ReadDir(nodesDir())
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(nodesDir(), e.Name()))
		if err != nil {
			continue
		}
		var r nodeRecord
		if json.Unmarshal(raw, &r) == nil && r.PID == pid {
			return r
		}
	}
	g.Expect(entries).To(BeEmpty(), "no node record of process %d", pid)
	return nodeRecord{}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// runNodeUntilKilled starts a control plane and a node running one pod in
// dir, writes dir/ready and blocks until the parent test kills the process.
func runNodeUntilKilled(t *testing.T, dir string) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	imgs, err := TestImages(ctx, filepath.Join(dir, "images"))
	g.Expect(err).NotTo(HaveOccurred())
	cp, err := StartControlPlane(ctx, "sweeptest", filepath.Join(dir, "cluster"), true)
	g.Expect(err).NotTo(HaveOccurred())
	node, err := StartNode(ctx, cp, imgs.Pause)
	g.Expect(err).NotTo(HaveOccurred())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "pause", Image: imgs.Pause.Ref, ImagePullPolicy: corev1.PullNever,
		}}},
	}
	// Wait for the default ServiceAccount that the controller-manager makes.
	g.Eventually(func() error { return cp.Client.Create(ctx, pod) }, time.Minute, time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
	}, 3*time.Minute, time.Second).Should(Succeed(), func() string { return DescribePods(ctx, cp, "default") })
	t.Logf("node %s runs pod %s; waiting to be killed", node.Name, pod.Name)
	g.Expect(os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)).To(Succeed())
	time.Sleep(time.Hour)
}
