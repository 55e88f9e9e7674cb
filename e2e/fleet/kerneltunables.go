package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// kubeletTunables are the kernel settings, under /proc/sys, that nodes
// change: those a kubelet sets when it starts (protectKernelDefaults: false;
// true would make it refuse to start on a host with other values), and the
// raisedTunables.
var kubeletTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"fs/inotify/max_user_instances",
}

// raisedTunables are limits the fleet raises while nodes run: every kubelet
// and containerd takes inotify instances, and two fleets at once (test
// packages run in parallel) exhaust Debian's default of 128 per user, so a
// kubelet exits with "too many open files".
var raisedTunables = map[string]int{"fs/inotify/max_user_instances": 1024}

// tunablesDir holds the host's own values of kubeletTunables while any node
// runs. It is on tmpfs, like the values themselves: a reboot resets both.
var tunablesDir = "/run/lifeboat-fleet"

// recordKernelTunables saves the host's values of kubeletTunables before the
// first node's kubelet changes them; a node calls it after claiming its
// bridge, so restoreKernelTunables sees that the node exists.
func recordKernelTunables() error {
	return withTunablesLock(func(record string) error {
		if exists(record) {
			return raiseTunables() // another node recorded the host's values
		}
		var b strings.Builder
		for _, t := range kubeletTunables {
			v, err := os.ReadFile(filepath.Join("/proc/sys", t))
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s=%s\n", t, strings.TrimSpace(string(v)))
		}
		if err := os.WriteFile(record, []byte(b.String()), 0o600); err != nil {
			return err
		}
		return raiseTunables()
	})
}

// raiseTunables sets each of raisedTunables to its value where it is lower.
func raiseTunables() error {
	for t, want := range raisedTunables {
		path := filepath.Join("/proc/sys", t)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if have, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && have >= want {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// restoreKernelTunables puts the recorded values back once no node bridge is
// left on the host (the last node of any fleet restores them).
func restoreKernelTunables() error {
	return withTunablesLock(func(record string) error {
		if len(NodeBridges()) > 0 || !exists(record) {
			return nil
		}
		raw, err := os.ReadFile(record)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			t, v, ok := strings.Cut(line, "=")
			if !ok || !slices.Contains(kubeletTunables, t) {
				return fmt.Errorf("%s: unexpected line %q", record, line)
			}
			if err := os.WriteFile(filepath.Join("/proc/sys", t), []byte(v), 0o644); err != nil {
				return err
			}
		}
		return os.Remove(record)
	})
}

// KernelTunables reads the host's current values of the settings a kubelet
// changes (for leak tests).
func KernelTunables() map[string]string {
	values := map[string]string{}
	for _, t := range kubeletTunables {
		v, _ := os.ReadFile(filepath.Join("/proc/sys", t))
		values[t] = strings.TrimSpace(string(v))
	}
	return values
}

// withTunablesLock runs fn with the path of the record file while holding an
// exclusive lock that every fleet process on the host shares.
func withTunablesLock(fn func(record string) error) error {
	return withHostLock("lock", func() error { return fn(filepath.Join(tunablesDir, "kernel-tunables")) })
}

// withHostLock runs fn holding the exclusive flock on the file name in
// tunablesDir, shared by every test process on the machine.
func withHostLock(name string, fn func() error) error {
	if err := os.MkdirAll(tunablesDir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(tunablesDir, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	return fn()
}
