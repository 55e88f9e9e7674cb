package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

const (
	tenant       = "fanout-tenant"
	locationName = "primary"
	// baselineKind labels the baseline's works; no reconciler owns it.
	baselineKind = "FanOutBaseline"
)

// BenchmarkFanOut1000 measures the hub's side of sending one BackupLocation
// to 1,000 clusters (fanOut): Valid < 60 s, hub peak RSS < 500 MiB.
func BenchmarkFanOut1000(b *testing.B) { fanOut(b, 1000, 500) }

// BenchmarkFanOut5000 is fanOut at 5,000 clusters, the most a location
// serves (fleetv1alpha1.MaxLocationClusters): Valid < 60 s, hub peak RSS
// < 1 GiB.
func BenchmarkFanOut5000(b *testing.B) { fanOut(b, 5000, 1024) }

// fanOut measures the hub's side of sending one BackupLocation to total
// clusters: the time from creating a location that selects total managed
// BackupClusters until its status shows all of them Valid (target < 60 s),
// and the lifeboat-hub process's peak RSS (target < maxMiB).
// Simulated work agents answer every BackupTarget work at once, in this
// process, so that what is measured is the hub's own work.
//
// Baseline, in the same run against the same API server: a plain loop with the
// agents' concurrency that creates total ManifestWorks of the same size in the
// cluster namespaces and writes each one's status once, the floor for
// "one object and one status write per cluster". It runs once before the hub
// starts and once after it stopped; ratio is ours over their mean. For
// reference, the same loop server-side applies the works as dispatch.Apply
// does (s-apply-loop). s-to-idle is when the hub had done everything that
// followed from the location (e.g. BackupCluster status) and was idle again;
// the peak RSS is read then.
//
// It runs once: a second iteration would find the location already valid.
func fanOut(b *testing.B, total int, maxMiB int64) {
	if b.N > 1 {
		b.Skip("the fan-out benchmarks run once; use -benchtime=1x")
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()

	began := time.Now()
	e := startHubEnv(ctx, b, "fanout")
	upIn := time.Since(began)

	clusters := make([]string, total)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("fanout-%04d", i)
	}
	began = time.Now()
	if err := e.createClusters(ctx, clusters, map[string]string{"bench": "fanout"}); err != nil {
		b.Fatal(err)
	}
	createdIn := time.Since(began)

	target := backupTarget(tenant, locationName, storage())
	base1, base1CPU, err := e.baseline(ctx, clusters, "before", target, false)
	if err != nil {
		b.Fatal(err)
	}

	hub := e.startHub(ctx, b)
	// The hub onboards the clusters it finds (with OCM, their add-on works)
	// before it is idle; none of that is timed.
	addOns := e.setUpAddOns(ctx, b, total)
	settled, ok := waitQuiet(hub.Pid(), 10*time.Minute)
	works, err := e.works.WorkV1().ManifestWorks("").List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	manifestBytes := 0
	for _, mw := range works.Items {
		if mw.Labels[dispatch.LabelKind] == dispatch.LabelValue(backuplocation.Kind) {
			b.Fatalf("the hub holds a BackupLocation work before any location exists: %s/%s", mw.Namespace, mw.Name)
		}
		for _, m := range mw.Spec.Workload.Manifests {
			manifestBytes += len(m.Raw)
		}
	}
	logf(b, "setup: control plane up and lifeboat-hub built in %v; %d managed BackupClusters and namespaces created in %v; %s; lifeboat-hub ready and idle after %v (idle: %v), "+
		"holding %d ManifestWorks of its own (%.1f MiB of manifests); load average %s",
		upIn.Round(time.Millisecond), total, createdIn.Round(time.Millisecond), addOns, settled.Round(time.Millisecond), ok,
		len(works.Items), float64(manifestBytes)/(1<<20), proc.LoadAverage())
	selector, placementRef := e.selection(ctx, b, map[string]string{"bench": "fanout"}, total)
	if _, idle := waitQuiet(hub.Pid(), 5*time.Minute); !idle {
		b.Log("lifeboat-hub was not idle before the location")
	}

	actx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	ag := newAgents(e.works, backuplocation.Kind, total)
	ag.run(actx)

	pids := map[string]int{"lifeboat-hub": hub.Pid(), "test process": os.Getpid()}
	if p := e.process("-kube-apiserver"); p != nil {
		pids["kube-apiserver"] = p.Pid()
	}
	if p := e.process("-etcd"); p != nil {
		pids["etcd"] = p.Pid()
	}
	hubCPUBefore, _ := cpuTime(hub.Pid())
	hubRSSBefore, _ := proc.MemKiB(hub.Pid(), "VmRSS")
	reqBefore, err := e.apiRequests(ctx, resources...)
	if err != nil {
		b.Fatal(err)
	}
	cpu := newCPUMeter(pids)

	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: locationName},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget:   storage(),
			ClusterSelector: selector,
			PlacementRef:    placementRef,
		},
	}
	w, err := e.c.Watch(ctx, &fleetv1alpha1.BackupLocationList{}, client.InNamespace(tenant), client.MatchingFields{"metadata.name": locationName})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { w.Stop() }()

	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		e.profile(ctx, b, "profile?seconds=90", fmt.Sprintf("fanout%d-cpu.pprof", total))
	}()
	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	if err := e.c.Create(ctx, loc); err != nil {
		b.Fatal(err)
	}
	var (
		progress        []string
		statusEvents    int
		allSelected     time.Duration
		last            *fleetv1alpha1.BackupLocation
		deadline        = time.After(10 * time.Minute)
		aggregated      time.Duration
		selectedLogged  bool
		validMilestones = map[int32]bool{}
	)
	for aggregated == 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				if w, err = e.c.Watch(ctx, &fleetv1alpha1.BackupLocationList{}, client.InNamespace(tenant), client.MatchingFields{"metadata.name": locationName}); err != nil {
					b.Fatal(err)
				}
				continue
			}
			got, isLoc := ev.Object.(*fleetv1alpha1.BackupLocation)
			if !isLoc || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			at := time.Since(start)
			if last != nil && !sameVersion(last, got) {
				statusEvents++
			}
			last = got
			st := got.Status
			current := st.ObservedGeneration == got.Generation
			if current && st.SelectedClusters == int32(total) && !selectedLogged {
				allSelected, selectedLogged = at, true
			}
			if current && !validMilestones[st.ValidClusters] {
				validMilestones[st.ValidClusters] = true
				progress = append(progress, fmt.Sprintf("%.1fs %d/%d %s", at.Seconds(), st.ValidClusters, st.SelectedClusters, st.Phase))
			}
			if current && st.Phase == fleetv1alpha1.LocationValid && st.ValidClusters == int32(total) && st.SelectedClusters == int32(total) {
				aggregated = at
			}
		case <-deadline:
			seen, fed, _, _ := ag.progress()
			b.Fatalf("the location did not show %d valid clusters within 10 minutes; agents saw %d works and answered %d; last status: %s",
				total, seen, fed, describe(last))
		}
	}
	b.StopTimer()
	hwmAtValid, _ := proc.MemKiB(hub.Pid(), "VmHWM")
	hubCPU, _ := cpuTime(hub.Pid())
	used := cpu.used()
	loadAtEnd := proc.LoadAverage()
	reqAt, err := e.apiRequests(ctx, resources...)
	if err != nil {
		b.Fatal(err)
	}
	seen, fed, allSeen, allFed := ag.progress()

	// The hub's work for the location goes on after it reported it: whatever
	// follows from it (e.g. every BackupCluster's status listing its
	// locations) is done when the hub is idle again. Peak RSS is read then.
	tailDone := make(chan int)
	tailCtx, stopTail := context.WithCancel(ctx)
	go func() {
		n := 0
		defer func() { tailDone <- n }()
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if got, isLoc := ev.Object.(*fleetv1alpha1.BackupLocation); isLoc && !sameVersion(last, got) {
					n++
					last = got
				}
			case <-tailCtx.Done():
				return
			}
		}
	}()
	_, idle := waitQuiet(hub.Pid(), 5*time.Minute)
	idleAt := time.Since(start) - quietSpan
	stopTail()
	extraStatus := <-tailDone
	hwm, _ := proc.MemKiB(hub.Pid(), "VmHWM")
	rss, _ := proc.MemKiB(hub.Pid(), "VmRSS")
	e.profile(ctx, b, "heap", fmt.Sprintf("fanout%d-heap.pprof", total))
	<-profiled
	hubCPUIdle, _ := cpuTime(hub.Pid())
	reqIdle, _ := e.apiRequests(ctx, resources...)
	stopAgents()
	hubTotalCPU, _ := cpuTime(hub.Pid())
	_ = hub.Stop(10 * time.Second)

	base2, base2CPU, err := e.baseline(ctx, clusters, "after", target, false)
	if err != nil {
		b.Fatal(err)
	}
	applyLoop, applyCPU, err := e.baseline(ctx, clusters, "apply", target, true)
	if err != nil {
		b.Fatal(err)
	}

	req := reqAt.since(reqBefore)
	workWrites := req.sum("manifestworks", writeVerbs...)
	statusWrites := req.sum("backuplocations/status", writeVerbs...)
	baseline := (base1 + base2) / 2
	ratio := aggregated.Seconds() / baseline.Seconds()
	dispatched := allSeen.Sub(start)
	fedAfter := allFed.Sub(start)

	// Benchmark output is cut after ten lines: few, long lines.
	logf(b, "location Valid on %d/%d clusters %v after it was created; status reported all %d selected after %v; progression (valid/selected): %s; "+
		"location changes seen: %d until Valid, %d after; lifeboat-hub idle again %v after the location was created (idle: %v); "+
		"status %.3f MiB of JSON (%d connections not Valid listed), the location %.3f MiB",
		last.Status.ValidClusters, total, aggregated.Round(time.Millisecond), total, allSelected.Round(time.Millisecond), strings.Join(progress, ", "),
		statusEvents, extraStatus, idleAt.Round(100*time.Millisecond), idle, mib(last.Status), len(last.Status.NotValid), mib(last))
	logf(b, "agents: last of %d works seen after %v, last of %d answered after %v (%d status writes, %d failed and retried)",
		seen, dispatched.Round(time.Millisecond), fed, fedAfter.Round(time.Millisecond), ag.writes.Load(), ag.failures.Load())
	logf(b, "API requests until Valid: %s; after, until the hub was idle: %s", req, reqIdle.since(reqAt))
	logf(b, "CPU until Valid: %s (load average then %s); lifeboat-hub: peak RSS %.1f MiB (%.1f MiB when Valid; RSS %.1f MiB idle before the location, %.1f MiB at the end), "+
		"CPU %.2fs until idle again, %.2fs in all%s",
		formatCPU(used), loadAtEnd, float64(hwm)/1024, float64(hwmAtValid)/1024, float64(hubRSSBefore)/1024, float64(rss)/1024,
		(hubCPUIdle - hubCPUBefore).Seconds(), hubTotalCPU.Seconds(), e.ocmRSS())
	logf(b, "baseline (create + status write) %v (before the hub %v, after %v; kube-apiserver CPU %.2fs, %.2fs); ratio ours/baseline %.2f; "+
		"apply loop (server-side apply as dispatch.Apply + status write) %v (kube-apiserver CPU %.2fs)",
		baseline.Round(time.Millisecond), base1.Round(time.Millisecond), base2.Round(time.Millisecond), base1CPU.Seconds(), base2CPU.Seconds(), ratio,
		applyLoop.Round(time.Millisecond), applyCPU.Seconds())

	b.ReportMetric(aggregated.Seconds(), "s-to-aggregate")
	b.ReportMetric(float64(hwm)/1024, "hub-peak-RSS-MiB")
	b.ReportMetric(baseline.Seconds(), "s-baseline")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(dispatched.Seconds(), "s-to-dispatch")
	b.ReportMetric(applyLoop.Seconds(), "s-apply-loop")
	b.ReportMetric((hubCPU - hubCPUBefore).Seconds(), "hub-CPU-s")
	b.ReportMetric(used["kube-apiserver"].Seconds(), "apiserver-CPU-s")
	b.ReportMetric(workWrites, "hub-work-writes")
	b.ReportMetric(statusWrites, "hub-status-writes")
	b.ReportMetric(req.sum("backupclusters/status", writeVerbs...), "cluster-status-writes")
	b.ReportMetric(reqIdle.since(reqAt).sum("backupclusters/status", writeVerbs...), "cluster-status-writes-after")
	b.ReportMetric(idleAt.Seconds(), "s-to-idle")
	if aggregated > 60*time.Second {
		b.Errorf("aggregating %d clusters took %v, the target is < 60s", total, aggregated)
	}
	if hwm > maxMiB*1024 {
		b.Errorf("lifeboat-hub's peak RSS was %.1f MiB, the target is < %d MiB", float64(hwm)/1024, maxMiB)
	}
}

// resources are those whose API requests the benchmark counts.
var resources = []string{"manifestworks", "backuplocations", "backupclusters"}

// createClusters creates a namespace and a managed BackupCluster with labels
// for every cluster name, and the tenant's namespace; with OCM, also their
// ManagedClusters (createManagedClusters).
func (e *hubEnv) createClusters(ctx context.Context, names []string, labels map[string]string) error {
	c := e.c
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}); err != nil {
		return err
	}
	if withOCM() {
		if err := e.createManagedClusters(ctx, names, labels); err != nil {
			return err
		}
	}
	var eg errgroup.Group
	eg.SetLimit(32)
	for _, name := range names {
		eg.Go(func() error {
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
				return err
			}
			return c.Create(ctx, &fleetv1alpha1.BackupCluster{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec:       fleetv1alpha1.BackupClusterSpec{Managed: true},
			})
		})
	}
	return eg.Wait()
}

func storage() backupv1alpha1.StorageTarget {
	return backupv1alpha1.StorageTarget{
		Azure: backupv1alpha1.AzureBlobLocation{StorageAccount: "fanoutbench", Container: "backups", Prefix: "fleet", Cloud: backupv1alpha1.AzurePublic},
		Identity: backupv1alpha1.AzureWorkloadIdentity{
			ClientID: "00000000-0000-0000-0000-000000000001",
			TenantID: "00000000-0000-0000-0000-000000000002",
		},
		ValidationInterval: &metav1.Duration{Duration: time.Hour},
	}
}

// backupTarget is the BackupTarget the hub sends for location
// namespace/name, as hub/reconcilers/backuplocation builds it.
func backupTarget(namespace, name string, st backupv1alpha1.StorageTarget) *backupv1alpha1.BackupTarget {
	return &backupv1alpha1.BackupTarget{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupTarget"},
		ObjectMeta: metav1.ObjectMeta{
			Name: backuplocation.TargetName(namespace, name),
			Labels: map[string]string{
				dispatch.LabelKind:      backuplocation.Kind,
				dispatch.LabelNamespace: dispatch.LabelValue(namespace),
				dispatch.LabelName:      dispatch.LabelValue(name),
			},
		},
		Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: st},
	}
}

// targetFeedback are the feedback fields the backuplocation reconciler asks
// every BackupTarget for.
var targetFeedback = []dispatch.Field{
	{Name: "phase", Path: ".status.phase"},
	{Name: "reason", Path: ".status.reason"},
	{Name: "message", Path: ".status.message"},
	{Name: "lastValidationTime", Path: ".status.lastValidationTime"},
	{Name: "observedGeneration", Path: ".status.observedGeneration"},
}

// baseline creates, with agentWorkers at once, a ManifestWork like the hub's
// for target in every cluster and writes its status once as the agents do,
// and returns how long that took. With apply it server-side applies the works
// with dispatch.Apply, as the hub does, instead of creating them. It then
// deletes the works (not timed). apiserverCPU is the CPU time kube-apiserver
// used meanwhile.
func (e *hubEnv) baseline(ctx context.Context, clusters []string, round string, target *backupv1alpha1.BackupTarget, apply bool) (took, apiserverCPU time.Duration, _ error) {
	owner := dispatch.HubObject{Kind: baselineKind, Namespace: tenant, Name: "baseline-" + round, UID: types.UID("baseline-" + round), Generation: 1}
	works := make([]*workv1.ManifestWork, len(clusters))
	for i, cluster := range clusters {
		mw, err := dispatch.Work(cluster, owner, target, targetFeedback, dispatch.WithResource("backuptargets"))
		if err != nil {
			return 0, 0, err
		}
		if _, err := dispatch.Unchanged(mw, nil); err != nil {
			return 0, 0, err
		}
		works[i] = mw
	}
	apiserver := e.process("-kube-apiserver").Pid()
	cpuBefore, _ := cpuTime(apiserver)
	start := time.Now()
	var eg errgroup.Group
	eg.SetLimit(agentWorkers)
	for _, mw := range works {
		eg.Go(func() error {
			if apply {
				applied := mw.DeepCopy()
				if err := dispatch.Apply(ctx, e.c, applied); err != nil {
					return err
				}
				return writeFeedback(ctx, e.works, applied)
			}
			created, err := e.works.WorkV1().ManifestWorks(mw.Namespace).Create(ctx, mw, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			return writeFeedback(ctx, e.works, created)
		})
	}
	if err := eg.Wait(); err != nil {
		return 0, 0, fmt.Errorf("baseline %s: %w", round, err)
	}
	took = time.Since(start)
	cpuAfter, _ := cpuTime(apiserver)
	apiserverCPU = cpuAfter - cpuBefore

	eg = errgroup.Group{}
	eg.SetLimit(agentWorkers)
	for _, mw := range works {
		eg.Go(func() error {
			return e.works.WorkV1().ManifestWorks(mw.Namespace).Delete(ctx, mw.Name, metav1.DeleteOptions{})
		})
	}
	if err := eg.Wait(); err != nil {
		return 0, 0, fmt.Errorf("baseline %s: deleting its works: %w", round, err)
	}
	selector := dispatch.LabelKind + "=" + dispatch.LabelValue(baselineKind)
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		left, err := e.works.WorkV1().ManifestWorks("").List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(left.Items) == 0, nil
	})
	return took, apiserverCPU, err
}

// mib is the size of v as JSON in MiB.
func mib(v any) float64 {
	data, _ := json.Marshal(v)
	return float64(len(data)) / (1 << 20)
}

// sameVersion reports whether a and b are the same version of the location.
func sameVersion(a, b *fleetv1alpha1.BackupLocation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ResourceVersion == b.ResourceVersion
}

func describe(loc *fleetv1alpha1.BackupLocation) string {
	if loc == nil {
		return "none"
	}
	s := loc.Status
	var conds []string
	for _, c := range s.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("generation %d, observed %d, phase %s, valid %d of %d selected; %s",
		loc.Generation, s.ObservedGeneration, s.Phase, s.ValidClusters, s.SelectedClusters, strings.Join(conds, "; "))
}

func (c requestCounts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, c[k]))
	}
	return strings.Join(parts, ", ")
}
