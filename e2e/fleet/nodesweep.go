package fleet

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nodeRecord is what a running node leaves in nodesDir so that a later fleet
// can remove it from the host when the process that started it was killed
// (SIGKILL or a test timeout run no deferred Stop; the node's own processes
// die with their parent, but shims, containers, mounts, the bridge, the NAT
// chain and cgroups stay).
type nodeRecord struct {
	// PID and Start (the process start time in clock ticks since boot)
	// identify the owner process even after its PID is reused.
	PID     int    `json:"pid"`
	Start   uint64 `json:"start"`
	Dir     string `json:"dir"`
	Bridge  string `json:"bridge"`
	Ifindex int    `json:"ifindex"`
	Chain   string `json:"chain"`
	Socket  string `json:"socket"`
	APIPort int    `json:"apiPort"`
}

// nodesDir holds one record per running node, named after its bridge.
func nodesDir() string { return filepath.Join(tunablesDir, "nodes") }

func (n *Node) recordPath() string { return filepath.Join(nodesDir(), n.bridge+".json") }

// writeRecord records the node as owned by this process; a node calls it
// right after claiming its bridge.
func (n *Node) writeRecord() error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	raw, err := json.Marshal(nodeRecord{
		PID: os.Getpid(), Start: start, Dir: n.Dir, Bridge: n.bridge, Ifindex: n.ifindex,
		Chain: n.chain, Socket: n.socket, APIPort: n.apiPort,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(nodesDir(), 0o700); err != nil {
		return err
	}
	return os.WriteFile(n.recordPath(), raw, 0o600)
}

// processStart is field 22 of /proc/pid/stat: when the process started.
func processStart(pid int) (uint64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	rest := string(raw[strings.LastIndexByte(string(raw), ')')+1:])
	fields := strings.Fields(rest) // fields[0] is field 3 (state)
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// owned reports whether the record's owner process still runs.
func (r nodeRecord) owned() bool {
	start, err := processStart(r.PID)
	return err == nil && start == r.Start
}

// SweepDeadNodes removes from the host every node whose owner process is
// gone: the processes in its containers' cgroups, its shims, mounts, veths,
// NAT chain, bridge, cgroups and directory; and, when no node is left, puts
// the kernel settings back. StartNode calls it first. It returns the bridges
// of the nodes it removed.
func SweepDeadNodes() []string {
	entries, _ := os.ReadDir(nodesDir())
	var swept []string
	for _, e := range entries {
		path := filepath.Join(nodesDir(), e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var r nodeRecord
		if json.Unmarshal(raw, &r) != nil || r.owned() {
			continue
		}
		// Claim the record: of two fleets sweeping at once, one renames it.
		claimed := fmt.Sprintf("%s.sweeping-%d", path, os.Getpid())
		if os.Rename(path, claimed) != nil {
			continue
		}
		n := &Node{Dir: r.Dir, bridge: r.Bridge, ifindex: r.Ifindex, chain: r.Chain, socket: r.Socket, apiPort: r.APIPort}
		n.containers = n.stateContainers()
		n.veths = n.bridgePorts()
		n.removeFromHost()
		if len(MountsUnder(n.Dir)) == 0 {
			_ = os.RemoveAll(n.Dir)
		}
		_ = os.Remove(claimed)
		fmt.Fprintf(os.Stderr, "fleet: removed node %s (%s) left by dead process %d\n", r.Bridge, r.Dir, r.PID)
		swept = append(swept, r.Bridge)
	}
	if len(swept) > 0 {
		_ = restoreKernelTunables()
	}
	return swept
}

// stateContainers lists the containers containerd's shims ran for the node,
// from its state directory (containerd itself may be gone).
func (n *Node) stateContainers() []string {
	entries, _ := os.ReadDir(filepath.Join(n.Dir, "containerd", "state", "io.containerd.runtime.v2.task", "k8s.io"))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// removeFromHost removes what the node added to the host, whether or not
// its containerd still runs: it kills what is left in its containers'
// cgroups and its shims, then removes the cgroups, the mounts under its
// directory, its veths, NAT chain, bridge and record.
func (n *Node) removeFromHost() {
	killCgroupProcesses(n.containers)
	n.killShims()
	removeCgroups(n.containers)
	unmountUnder(n.Dir)
	// The kernel removes a veth pair when its pod's network namespace goes,
	// but in its own time (seconds on a busy host): delete what is left.
	for _, v := range n.veths {
		if _, err := net.InterfaceByName(v); err == nil {
			_ = run("ip", "link", "delete", v)
		}
	}
	if n.ownsChain() {
		_ = run("iptables", "-w", "-t", "nat", "-D", "PREROUTING", "-i", n.bridge, "-j", n.chain)
		_ = run("iptables", "-w", "-t", "nat", "-F", n.chain)
		_ = run("iptables", "-w", "-t", "nat", "-X", n.chain)
	}
	if n.bridge != "" {
		// The record goes first: once the bridge is gone, another node may
		// claim its name and write a record of the same name.
		_ = os.Remove(n.recordPath())
		if iface, err := net.InterfaceByName(n.bridge); err == nil && (n.ifindex == 0 || iface.Index == n.ifindex) {
			_ = run("ip", "link", "delete", n.bridge)
		}
	}
}

// killCgroupProcesses kills every process in the containers' cgroups and
// waits (up to 10 s) until they are gone.
func killCgroupProcesses(ids []string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pids []int
		for _, id := range ids {
			raw, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", containerdCgroupParent, id, "cgroup.procs"))
			for _, f := range strings.Fields(string(raw)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
