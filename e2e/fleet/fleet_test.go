package fleet

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Starting and stopping a fleet leaves no process and no listening port behind,
// including the grandchildren the garden starts; with spokes running as pods,
// no container, shim, mount, network namespace, veth, NAT rule, bridge or
// cgroup of its nodes either, and the kernel settings its kubelet changed are
// the host's own again.
func TestStartStopLeavesNothingBehind(t *testing.T) {
	g := NewWithT(t)
	// Starting takes about a minute; on a cold Go build cache building the
	// nodes' images alone took 4 min 54 s beside the other packages' tests.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	before := descendants(os.Getpid())
	tunables := KernelTunables()

	f, err := Start(ctx, Options{Spokes: 1, Pods: true, HubManager: true, Discovery: true, Log: t.Logf})
	g.Expect(err).NotTo(HaveOccurred())
	dir := f.Dir
	node := f.Spokes[0].Node
	containers, err := node.Containers(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	// The webhook's and the spoke's pods: a sandbox and a container each.
	g.Expect(len(containers)).To(BeNumerically(">=", 4), "containers: %v", containers)
	g.Expect(node.Leftovers()).NotTo(BeEmpty(), "a running node is seen on the host")

	pids := subtract(descendants(os.Getpid()), before)
	// Addresses, not ports: another fleet on the host (the e2e package's, run
	// beside this one) has kubelets on port 10250 too, of its own node IPs.
	addrs := listeningAddrs(pids)
	// The Entra stand-in and the blob proxy serve from this process.
	for _, u := range []string{f.Azure.Entra.URL(), f.Azure.Proxy.URL()} {
		addrs = append(addrs, urlHost(t, u))
	}
	names := map[int]string{}
	for _, pid := range pids {
		names[pid] = processName(pid)
	}
	t.Logf("fleet processes: %v", names)
	t.Logf("fleet listening addresses: %v", addrs)
	// etcd + kube-apiserver + kube-controller-manager for hub and spoke, the work
	// agent, the garden with its own etcd and kube-apiserver.
	g.Expect(len(pids)).To(BeNumerically(">=", 10), "processes: %v", names)
	g.Expect(len(addrs)).To(BeNumerically(">=", 10))
	g.Expect(addrs).To(ContainElement(HaveSuffix(":10250")), "the node's kubelet")

	f.Stop()
	g.Expect(node.Leftovers()).To(BeEmpty(), "the node left something on the host")
	g.Expect(MountsUnder(dir)).To(BeEmpty())
	if len(NodeBridges()) == 0 { // no other fleet's node runs on the host
		g.Expect(KernelTunables()).To(Equal(tunables), "the kernel settings the kubelet changed are put back")
	}

	for _, pid := range pids {
		g.Expect(alive(pid)).To(BeFalse(), "process %d (%s) outlived the fleet", pid, names[pid])
	}
	open := listening()
	for _, a := range addrs {
		g.Expect(open).NotTo(HaveKey(a), "%s still listening after Stop", a)
	}
	_, err = os.Stat(dir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "the fleet directory is removed")
}

// urlHost is the host:port a URL's server listens on.
func urlHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func urlPort(t *testing.T, raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// descendants lists every process below pid (children, grandchildren, ...).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := parentOf(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func parentOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces; fields follow it.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func processName(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

func subtract(all, known []int) []int {
	seen := map[int]bool{}
	for _, p := range known {
		seen[p] = true
	}
	var out []int
	for _, p := range all {
		if !seen[p] {
			out = append(out, p)
		}
	}
	return out
}

// listening maps each listening TCP socket's local address (ip:port) on the
// host to its socket inode.
func listening() map[string]string {
	out := map[string]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			if addr, ok := procNetAddr(fields[1]); ok {
				out[addr] = fields[9]
			}
		}
		f.Close()
	}
	return out
}

// procNetAddr turns /proc/net/tcp's "0100007F:1F90" (the address in 32-bit
// words of host byte order, little-endian here) into "127.0.0.1:8080".
func procNetAddr(local string) (string, bool) {
	ipHex, portHex, ok := strings.Cut(local, ":")
	if !ok {
		return "", false
	}
	raw, err := hex.DecodeString(ipHex)
	port, perr := strconv.ParseUint(portHex, 16, 16)
	if err != nil || perr != nil || len(raw)%4 != 0 {
		return "", false
	}
	for w := 0; w < len(raw); w += 4 {
		slices.Reverse(raw[w : w+4])
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10)), true
}

// listeningAddrs lists the local addresses (ip:port) the given processes
// listen on.
func listeningAddrs(pids []int) []string {
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(target, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
			}
		}
	}
	var addrs []string
	for addr, inode := range listening() {
		if inodes[inode] {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// A Start that fails stops what it started and removes its directory: here
// options it refuses after making the directory.
func TestFailedStartLeavesNoDirectory(t *testing.T) {
	g := NewWithT(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	g.Expect(os.Mkdir(dir, 0o700)).To(Succeed())
	f, err := Start(context.Background(), Options{Dir: dir, Pods: true})
	g.Expect(err).To(MatchError(ContainSubstring("Pods needs HubManager")))
	g.Expect(f).To(BeNil())
	g.Expect(dir).NotTo(BeADirectory(), "the failed start's directory is left behind")
}
