package fleet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// Addresses of the fleet's node networks.
const (
	// HostAddress is where pods on the fleet's nodes reach the servers that
	// listen on the host's loopback (API servers, the blob proxy, the Entra
	// stand-in): each node's bridge rewrites it to 127.0.0.1, keeping the port,
	// for the ports the fleet exposes. Only pods use it; nothing on the host
	// sends to it. Every serving certificate of the fleet names it.
	HostAddress = pki.HostAddress
	// serviceHost is the ClusterIP of the "kubernetes" Service (the first
	// address of the control plane's --service-cluster-ip-range): in-cluster
	// clients call it on port 443, and each node's bridge sends that to the
	// node's own kube-apiserver on loopback.
	serviceHost = pki.KubernetesServiceIP
	// nodeSubnetFmt is the /24 of node N's bridge; .1 is the bridge (and the
	// node's InternalIP), pods get .10 and up.
	nodeSubnetFmt = "10.201.%d.0/24"
	// bridgePrefix names the bridge of node N "lbnodeN"; the name is how
	// concurrent fleets claim a node number without colliding.
	bridgePrefix = "lbnode"
	maxNodes     = 250
)

// PodImage is an image tarball that Node imports into its containerd.
type PodImage struct {
	// Ref is the image's name, as pods name it (with imagePullPolicy: Never).
	Ref string
	// Tarball is the docker-archive file that holds it.
	Tarball string
}

// Node is one real node of a control plane: containerd, runc and the bridge
// CNI plugin from Debian, and a kubelet (and the control plane's
// kube-scheduler) built from the pinned Kubernetes modules. Pods run for real,
// with projected service-account tokens; kubectl exec and logs work. Stop
// removes every container, mount, network namespace, interface, iptables
// rule and cgroup it added.
type Node struct {
	Name string
	// IP is the node's InternalIP: the address of its bridge.
	IP  string
	Dir string

	cp         *ControlPlane
	index      int
	bridge     string
	ifindex    int // of the bridge: another fleet may claim the same name after Stop
	chain      string
	apiPort    int // of the control plane's kube-apiserver, on loopback
	socket     string
	containerd *proc.Process
	kubelet    *proc.Process
	scheduler  *proc.Process
	exposed    map[int]bool
	// containers are the IDs of every container and sandbox Stop removed.
	containers []string
	// veths are the host ends of the pods' veth pairs Stop saw on the bridge.
	veths []string
}

// StartNode adds a node to cp: it claims a bridge and subnet, starts
// containerd, imports images (the first is the pod sandbox image), starts the
// kube-scheduler and the kubelet, and waits until the Node is Ready. Pods
// reach cp's API server through in-cluster config and any loopback port given
// to Expose at HostAddress.
func StartNode(ctx context.Context, cp *ControlPlane, sandbox PodImage, images ...PodImage) (n *Node, err error) {
	SweepDeadNodes()
	n = &Node{Name: cp.Name + "-node", Dir: filepath.Join(cp.Dir, "node"), cp: cp, apiPort: cp.Port(), exposed: map[int]bool{}}
	n.socket = filepath.Join(n.Dir, "containerd", "containerd.sock")
	// A failed return ("return nil, err") sets n to nil before this runs.
	started := n
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	for _, sub := range []string{"logs", "cni", "kubelet", "pod-logs", "containerd"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := n.claimBridge(); err != nil {
		return nil, err
	}
	if err := n.writeRecord(); err != nil {
		return nil, err
	}
	if err := n.natRules(); err != nil {
		return nil, err
	}
	if err := recordKernelTunables(); err != nil {
		return nil, err
	}
	if err := n.startContainerd(ctx, sandbox); err != nil {
		return nil, err
	}
	for _, img := range append([]PodImage{sandbox}, images...) {
		if err := n.Import(ctx, img); err != nil {
			return nil, err
		}
	}
	if err := n.startScheduler(ctx); err != nil {
		return nil, err
	}
	if err := n.startKubelet(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Processes are the node's running processes (not the containers' shims).
func (n *Node) Processes() []*proc.Process {
	var ps []*proc.Process
	for _, p := range []*proc.Process{n.kubelet, n.scheduler, n.containerd} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// claimBridge creates the first free bridge lbnodeN and gives it 10.201.N.1/24.
func (n *Node) claimBridge() error {
	for i := 1; i <= maxNodes; i++ {
		name := fmt.Sprintf("%s%d", bridgePrefix, i)
		if err := run("ip", "link", "add", name, "type", "bridge"); err != nil {
			continue // taken by another fleet (or left by a crashed one)
		}
		n.index, n.bridge, n.chain = i, name, fmt.Sprintf("LIFEBOAT-NODE-%d", i)
		n.IP = fmt.Sprintf("10.201.%d.1", i)
		if iface, err := net.InterfaceByName(name); err == nil {
			n.ifindex = iface.Index
		}
		for _, args := range [][]string{
			{"ip", "addr", "add", n.IP + "/24", "dev", name},
			{"ip", "link", "set", name, "up"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
		// Let the node's pods reach loopback through DNAT, on this bridge only.
		return os.WriteFile(fmt.Sprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", name), []byte("1"), 0o644)
	}
	return fmt.Errorf("no free node bridge %s1..%s%d", bridgePrefix, bridgePrefix, maxNodes)
}

// natRules sends what the node's pods address to the "kubernetes" Service to
// the control plane's kube-apiserver on loopback, in a chain of the node's own.
func (n *Node) natRules() error {
	if err := run("iptables", "-w", "-t", "nat", "-N", n.chain); err != nil {
		return err
	}
	if err := run("iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-i", n.bridge, "-j", n.chain); err != nil {
		return err
	}
	return run("iptables", "-w", "-t", "nat", "-A", n.chain, "-d", serviceHost, "-p", "tcp", "--dport", "443",
		"-j", "DNAT", "--to-destination", fmt.Sprintf("127.0.0.1:%d", n.apiPort))
}

// Expose lets the node's pods reach the host's loopback port at
// HostAddress:port (the servers' certificates name HostAddress).
func (n *Node) Expose(port int) error {
	if n.exposed[port] {
		return nil
	}
	err := run("iptables", "-w", "-t", "nat", "-A", n.chain, "-d", HostAddress, "-p", "tcp", "--dport", fmt.Sprint(port),
		"-j", "DNAT", "--to-destination", fmt.Sprintf("127.0.0.1:%d", port))
	if err == nil {
		n.exposed[port] = true
	}
	return err
}

func (n *Node) startContainerd(ctx context.Context, sandbox PodImage) error {
	dir := filepath.Join(n.Dir, "containerd")
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lifeboat",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "rangeStart": "10.201.%d.10", "gateway": %q}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "loopback"}
  ]
}`, n.bridge, fmt.Sprintf(nodeSubnetFmt, n.index), n.index, n.IP, filepath.Join(n.Dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(n.Dir, "cni", "10-lifeboat.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.socket, filepath.Join(dir, "opt"),
		sandbox.Ref, filepath.Join(n.Dir, "cni"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return err
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("containerd not installed (Debian package containerd): %w", err)
	}
	if n.containerd, err = proc.Start(n.Name+"-containerd", filepath.Join(n.Dir, "logs"), bin, []string{"--config", cfg}); err != nil {
		return err
	}
	return n.containerd.WaitFor(ctx, "containerd socket", func() error {
		return n.ctr(ctx, "version")
	})
}

// Import loads an image tarball into the node's containerd.
func (n *Node) Import(ctx context.Context, img PodImage) error {
	return n.ctr(ctx, "images", "import", "--no-unpack=false", img.Tarball)
}

func (n *Node) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.socket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n *Node) startScheduler(ctx context.Context) (err error) {
	n.scheduler, err = n.cp.startComponent(ctx, "kube-scheduler", filepath.Join(n.Dir, "logs"), "system:kube-scheduler", nil)
	return err
}

func (n *Node) startKubelet(ctx context.Context) error {
	bin, err := assets.Path("kubelet")
	if err != nil {
		return err
	}
	kubeconfig, _, err := n.cp.UserKubeconfig("kubelet", "system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	// The kubelet serves exec, logs and port-forward to the API server, which
	// authenticates with its kubelet client certificate from the same CA.
	serving, err := n.cp.CA.Serving(n.Name, n.IP)
	if err != nil {
		return err
	}
	certFile, keyFile, err := serving.Write(filepath.Join(n.Dir, "kubelet"), "kubelet")
	if err != nil {
		return err
	}
	resolv := filepath.Join(n.Dir, "resolv.conf")
	// Pods resolve nothing: no name server outside the fleet is ever asked.
	if err := os.WriteFile(resolv, []byte("options ndots:1\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: %[1]s
healthzPort: 10248
tlsCertFile: %[2]s
tlsPrivateKeyFile: %[3]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[4]s}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix://%[5]s
imageServiceEndpoint: unix://%[5]s
resolvConf: %[6]s
podLogsDir: %[7]s
registerNode: true
evictionHard: {"memory.available": "0%%", "nodefs.available": "0%%", "imagefs.available": "0%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
`, n.IP, certFile, keyFile, n.cp.pkiPath("ca.crt"), n.socket, resolv, filepath.Join(n.Dir, "pod-logs"))
	cfgFile := filepath.Join(n.Dir, "kubelet", "config.yaml")
	before := socketInode(devicePluginSocket)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return err
	}
	args := []string{
		"--config=" + cfgFile,
		"--kubeconfig=" + kubeconfig,
		"--root-dir=" + filepath.Join(n.Dir, "kubelet"),
		"--cert-dir=" + filepath.Join(n.Dir, "kubelet", "pki"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--v=1",
	}
	if err := withHostLock("kubelet-start", func() error {
		n.kubelet, err = proc.Start(n.Name+"-kubelet", filepath.Join(n.Dir, "logs"), bin, args)
		if err != nil {
			return err
		}
		return n.waitDevicePluginSocket(ctx, before)
	}); err != nil {
		return err
	}
	return n.kubelet.WaitFor(ctx, "node "+n.Name+" Ready", func() error {
		node := &corev1.Node{}
		if err := n.cp.Client.Get(ctx, client.ObjectKey{Name: n.Name}, node); err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", n.Name)
	})
}

// Stop removes the node: the kubelet and scheduler first, then every
// container and sandbox (killing their shims), containerd, every mount under
// the node's directory, the host ends of its pods' veth pairs, its iptables
// chain, its bridge, and the cgroups its containers left; the last node on
// the host puts back the kernel settings the kubelets changed.
func (n *Node) Stop() {
	if n == nil {
		return
	}
	for _, p := range []*proc.Process{n.kubelet, n.scheduler} {
		_ = p.Stop(5 * time.Second)
	}
	n.veths = n.bridgePorts()
	if n.containerd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n.removeContainers(ctx)
		cancel()
		_ = n.containerd.Stop(5 * time.Second)
	}
	n.removeFromHost()
	_ = restoreKernelTunables()
}

// removeContainers kills and deletes every task and container of the node's
// containerd, so runc removes their cgroups and the shims exit.
func (n *Node) removeContainers(ctx context.Context) {
	ids, err := n.Containers(ctx)
	if err != nil {
		return
	}
	for _, id := range ids {
		n.containers = append(n.containers, id)
		_ = n.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
		_ = n.ctr(ctx, "tasks", "delete", "--force", id)
		_ = n.ctr(ctx, "containers", "delete", id)
	}
}

// killShims ends any containerd-shim left serving the node's containerd and
// waits until they have exited.
func (n *Node) killShims() {
	if n.socket == "" {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processesWithArg(n.socket)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cgroupControllers are the cgroup v1 hierarchies runc puts containers in.
var cgroupControllers = []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd"}

// containerdCgroupParent is where containerd's CRI puts pods whose kubelet
// runs without QoS cgroups: /<controller>/k8s.io/<container id>.
const containerdCgroupParent = "k8s.io"

// removeCgroups removes the cgroups runc left for ids, and their parent
// when no other node's containers use it.
func removeCgroups(ids []string) {
	for _, c := range cgroupControllers {
		parent := filepath.Join("/sys/fs/cgroup", c, containerdCgroupParent)
		for _, id := range ids {
			_ = os.Remove(filepath.Join(parent, id))
		}
		_ = os.Remove(parent) // fails while another node's containers are in it
	}
}

// Leftovers lists what of the node is still on the host: its bridge, NAT
// chain and jump rule, its record, mounts under its directory, processes serving its
// containerd (shims), and its containers' cgroups. Empty after Stop.
func (n *Node) Leftovers() []string {
	var left []string
	if n.bridge != "" {
		if iface, err := net.InterfaceByName(n.bridge); err == nil && iface.Index == n.ifindex {
			left = append(left, "interface "+n.bridge)
		}
		// Host ends of the pods' veth pairs, on the bridge or left after it.
		for _, v := range append(n.bridgePorts(), n.veths...) {
			if _, err := net.InterfaceByName(v); err == nil {
				left = append(left, "veth "+v)
			}
		}
	}
	if raw, err := os.ReadFile(n.recordPath()); n.bridge != "" && err == nil && strings.Contains(string(raw), strconv.Quote(n.Dir)) {
		left = append(left, "node record "+n.recordPath())
	}
	if n.ownsChain() {
		left = append(left, "iptables nat chain "+n.chain)
		if run("iptables", "-w", "-t", "nat", "-C", "PREROUTING", "-i", n.bridge, "-j", n.chain) == nil {
			left = append(left, "iptables nat PREROUTING jump to "+n.chain)
		}
	}
	for _, m := range MountsUnder(n.Dir) {
		left = append(left, "mount "+m)
	}
	if n.socket != "" {
		for _, pid := range processesWithArg(n.socket) {
			left = append(left, fmt.Sprintf("process %d serving %s", pid, n.socket))
		}
	}
	for _, c := range cgroupControllers {
		for _, id := range n.containers {
			if p := filepath.Join("/sys/fs/cgroup", c, containerdCgroupParent, id); exists(p) {
				left = append(left, "cgroup "+p)
			}
		}
	}
	return left
}

// ownsChain reports whether the node's NAT chain exists and is this node's:
// it sends to this control plane's port (another fleet may have made a chain
// of the same name since).
func (n *Node) ownsChain() bool {
	if n.chain == "" {
		return false
	}
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", n.chain).Output()
	return err == nil && strings.Contains(string(out), fmt.Sprintf("127.0.0.1:%d", n.apiPort))
}

// bridgePorts lists the interfaces attached to the node's bridge: the host
// ends of its pods' veth pairs.
func (n *Node) bridgePorts() []string {
	if n.bridge == "" {
		return nil
	}
	out, err := exec.Command("ip", "-o", "link", "show", "master", n.bridge).Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// Containers lists the IDs of the node's containers and pod sandboxes.
func (n *Node) Containers(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.socket, "--namespace", "k8s.io", "containers", "list", "--quiet").Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// processesWithArg lists the processes one of whose arguments is arg.
func processesWithArg(arg string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(raw), "\x00") {
			if a == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	for _, m := range MountsUnder(dir) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// MountsUnder lists the mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// run runs a host command (ip, iptables) and returns its output in the error.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NodeBridges lists the node bridges present on the host (for leak tests).
func NodeBridges() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, bridgePrefix) {
			out = append(out, i.Name)
		}
	}
	return out
}

// devicePluginSocket is where every kubelet serves device plugin
// registration: a fixed path, not under --root-dir, so all nodes on the
// machine share it. A starting kubelet removes the sockets there and then
// listens; two kubelets doing that at once collide ("bind: address already
// in use") and the loser exits. startKubelet therefore starts one kubelet at
// a time across processes, each waiting for its own socket.
const devicePluginSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

// socketID tells one socket file from another: its inode and change time
// (an inode number alone may be reused at once); zero if there is none.
type socketID struct {
	ino   uint64
	ctime syscall.Timespec
}

func socketInode(path string) socketID {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return socketID{}
	}
	return socketID{ino: st.Ino, ctime: st.Ctim}
}

// waitDevicePluginSocket waits until the kubelet has created a new device
// plugin socket (an inode other than before), or has exited.
func (n *Node) waitDevicePluginSocket(ctx context.Context, before socketID) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if id := socketInode(devicePluginSocket); id != (socketID{}) && id != before {
			return nil
		}
		select {
		case <-n.kubelet.Exited():
			return fmt.Errorf("kubelet %s exited while starting: %s", n.Name, n.kubelet.Tail(2000))
		case <-ctx.Done():
			return fmt.Errorf("kubelet %s did not serve %s: %w", n.Name, devicePluginSocket, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
