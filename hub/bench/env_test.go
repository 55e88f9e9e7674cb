package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	workclientset "open-cluster-management.io/api/client/work/clientset/versioned"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// hubEnv is a hub control plane (etcd and kube-apiserver with OCM's and
// Lifeboat's hub CRDs) and a lifeboat-hub binary built from this repository.
type hubEnv struct {
	dir string
	cp  *fleet.ControlPlane
	// fastCfg, c and works have no client-side rate limit: they stand in for
	// the fleet admin, the work agents and the baseline.
	fastCfg *rest.Config
	c       client.WithWatch
	works   workclientset.Interface
	hubBin  string
	// pprof is the address of the running hub's /debug/pprof.
	pprof string
	// ocm are OCM's placement controller and add-on manager, when they run
	// (withOCM).
	ocm []*proc.Process
}

// startHubEnv builds lifeboat-hub while the control plane starts; b.Cleanup
// stops the control plane and removes its files (LIFEBOAT_KEEP_TEST_DIR=1
// keeps them, with the processes' logs).
func startHubEnv(ctx context.Context, b *testing.B, name string) *hubEnv {
	dir, err := os.MkdirTemp("", "lifeboat-"+name+"-")
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("LIFEBOAT_KEEP_TEST_DIR") == "" {
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
	} else {
		b.Logf("control plane files and logs in %s", dir)
	}
	e := &hubEnv{dir: dir}
	var eg errgroup.Group
	eg.Go(func() error {
		var err error
		e.hubBin, err = buildHub(filepath.Join(dir, "bin"))
		return err
	})
	eg.Go(func() error {
		cp, err := fleet.StartControlPlane(ctx, name, filepath.Join(dir, "hub"), false)
		if err != nil {
			return err
		}
		e.cp = cp
		e.fastCfg = rest.CopyConfig(cp.Config)
		e.fastCfg.QPS, e.fastCfg.Burst = 5000, 10000
		if e.c, err = client.NewWithWatch(e.fastCfg, client.Options{Scheme: fleet.Scheme}); err != nil {
			return err
		}
		if e.works, err = workclientset.NewForConfig(e.fastCfg); err != nil {
			return err
		}
		return fleet.InstallHubCRDs(ctx, e.c)
	})
	err = eg.Wait()
	if e.cp != nil {
		b.Cleanup(e.cp.Stop)
	}
	if err != nil {
		b.Fatal(err)
	}
	if withOCM() {
		e.startOCM(ctx, b)
	}
	return e
}

// buildHub builds ./hub into dir as e2e/fleet builds its managers.
func buildHub(dir string) (string, error) {
	out := filepath.Join(dir, "lifeboat-hub")
	cmd := exec.Command("go", "build", "-o", out, "./hub")
	cmd.Dir = fleet.RepoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ./hub: %w\n%s", err, msg)
	}
	return out, nil
}

// startHub runs lifeboat-hub as a process with the control plane's admin
// kubeconfig, as it would run in a pod, and waits until it is ready. b.Cleanup
// stops it; stopping it earlier is fine.
func (e *hubEnv) startHub(ctx context.Context, b *testing.B) *proc.Process {
	port, err := proc.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	pprofPort, err := proc.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	e.pprof = fmt.Sprintf("127.0.0.1:%d", pprofPort)
	p, err := proc.Start("lifeboat-hub", filepath.Join(e.dir, "hub", "logs"), e.hubBin, []string{
		"--pprof-bind-address=" + e.pprof,
		"--kubeconfig=" + e.cp.AdminKubeconfig,
		// The benchmarks act in their tenant namespace as a fleet admin.
		"--fleet-admin-namespaces=" + tenant,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", port),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	if err := p.WaitFor(ctx, "lifeboat-hub readiness", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return p
}

// process returns the control plane's process whose name ends in suffix
// ("-kube-apiserver", "-etcd").
func (e *hubEnv) process(suffix string) *proc.Process {
	for _, p := range e.cp.Processes() {
		if strings.HasSuffix(p.Name, suffix) {
			return p
		}
	}
	return nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuTime is the user and system CPU time pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: the
	// fields after it start with field 3 (state); utime and stime are 14 and 15.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuMeter measures the CPU time some processes use from its start on.
type cpuMeter struct {
	names []string
	pids  []int
	start []time.Duration
}

func newCPUMeter(procs map[string]int) *cpuMeter {
	m := &cpuMeter{}
	for _, name := range []string{"lifeboat-hub", "kube-apiserver", "etcd", "test process"} {
		pid, ok := procs[name]
		if !ok {
			continue
		}
		t, _ := cpuTime(pid)
		m.names, m.pids, m.start = append(m.names, name), append(m.pids, pid), append(m.start, t)
	}
	return m
}

// used returns each process's CPU time since the meter started, by name.
func (m *cpuMeter) used() map[string]time.Duration {
	out := map[string]time.Duration{}
	for i, pid := range m.pids {
		t, err := cpuTime(pid)
		if err != nil {
			continue
		}
		out[m.names[i]] = t - m.start[i]
	}
	return out
}

// formatCPU lists CPU times by process in a fixed order.
func formatCPU(used map[string]time.Duration) string {
	var parts []string
	for _, n := range []string{"lifeboat-hub", "kube-apiserver", "etcd", "test process"} {
		if d, ok := used[n]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2fs", n, d.Seconds()))
		}
	}
	return strings.Join(parts, ", ")
}

// quietSpan is how long a process must use (almost) no CPU to count as idle.
const quietSpan = 1500 * time.Millisecond

// waitQuiet waits until pid has used less than 30ms of CPU in each 500ms of
// the last quietSpan: a manager that has synced its caches and has no work
// left. It gives up after limit.
func waitQuiet(pid int, limit time.Duration) (time.Duration, bool) {
	const period = 500 * time.Millisecond
	start := time.Now()
	last, _ := cpuTime(pid)
	quiet := 0
	for time.Since(start) < limit {
		time.Sleep(period)
		t, err := cpuTime(pid)
		if err != nil {
			return time.Since(start), false
		}
		if t-last < 30*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		last = t
		if time.Duration(quiet)*period >= quietSpan {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// requestCounts are the API server's apiserver_request_total counters summed
// over codes, by "resource[/subresource] VERB", for the resources named.
type requestCounts map[string]float64

var metricLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// apiRequests reads the API server's request counters of resources.
func (e *hubEnv) apiRequests(ctx context.Context, resources ...string) (requestCounts, error) {
	httpc, err := rest.HTTPClientFor(e.cp.Config)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.cp.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	want := map[string]bool{}
	for _, r := range resources {
		want[r] = true
	}
	out := requestCounts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "apiserver_request_total{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		labels := map[string]string{}
		for _, m := range metricLabel.FindAllStringSubmatch(line[:end], -1) {
			labels[m[1]] = m[2]
		}
		if !want[labels["resource"]] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		key := labels["resource"]
		if s := labels["subresource"]; s != "" {
			key += "/" + s
		}
		out[key+" "+labels["verb"]] += v
	}
	return out, sc.Err()
}

// since is what happened from before to c.
func (c requestCounts) since(before requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// sum adds the counters of resource (with subresource, e.g.
// "manifestworks/status") whose verb is one of verbs.
func (c requestCounts) sum(resource string, verbs ...string) float64 {
	var n float64
	for _, v := range verbs {
		n += c[resource+" "+v]
	}
	return n
}

// writeVerbs are the verbs of apiserver_request_total that write.
var writeVerbs = []string{"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}

// profileEnv names a folder to write the hub's profiles to (CPU while the
// benchmark is timed, heap at its end); unset, nothing is profiled.
const profileEnv = "LIFEBOAT_BENCH_PROFILE_DIR"

// profile saves the running hub's pprof profile kind (e.g. "profile?seconds=60",
// "heap") as file in $LIFEBOAT_BENCH_PROFILE_DIR, when that is set.
func (e *hubEnv) profile(ctx context.Context, b *testing.B, kind, file string) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.pprof+"/debug/pprof/"+kind, nil)
	if err != nil {
		b.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Errorf("profile %s: %v", kind, err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, data)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, file), data, 0o644)
	}
	if err != nil {
		b.Errorf("profile %s: %v", kind, err)
	}
}

// logf logs to b and, with -v, at once to stderr as well: a benchmark's log
// is printed only when it ends, and a long run on a busy machine may be cut
// short by its timeout.
func logf(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{b.Name()}, args...)...)
	}
}
