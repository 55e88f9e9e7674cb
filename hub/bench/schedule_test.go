package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// BenchmarkScheduleTick1000 is scheduleTick over 1,000 clusters.
func BenchmarkScheduleTick1000(b *testing.B) { scheduleTick(b, 1000) }

// BenchmarkScheduleTick5000 is scheduleTick over 5,000 clusters, the most a
// location serves.
func BenchmarkScheduleTick5000(b *testing.B) { scheduleTick(b, 5000) }

// scheduleTick measures one run of a BackupSchedule over total
// clusters: from creating the schedule (interval, no jitter, so its first run
// is at once) until all total Backups exist (s-to-create), and until every one
// is dispatched, its ApplicationBackup ManifestWork written and its
// Dispatched condition True (s-to-dispatch). The location is Valid on every
// cluster beforehand (simulated agents answer its BackupTarget works, not
// timed); nobody answers the Backup works: only the hub's side is measured.
//
// Baseline, in the same run against the same API server after the hub
// stopped: a plain loop that creates total Backups with 16 workers; ratio is
// s-to-create over it.
//
// It runs once: a second iteration would find the run done.
func scheduleTick(b *testing.B, total int) {
	if b.N > 1 {
		b.Skip("the schedule benchmarks run once; use -benchtime=1x")
	}
	b.StopTimer()
	// With OCM, setting up the add-on on 5,000 clusters alone takes up to
	// 21 min.
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Minute)
	defer cancel()

	e := startHubEnv(ctx, b, "schedule")
	clusters := make([]string, total)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("sched-%04d", i)
	}
	if err := e.createClusters(ctx, clusters, map[string]string{"bench": "schedule"}); err != nil {
		b.Fatal(err)
	}
	hub := e.startHub(ctx, b)
	addOns := e.setUpAddOns(ctx, b, total)
	settled, _ := waitQuiet(hub.Pid(), 10*time.Minute)
	logf(b, "setup: %s; load average %s", addOns, proc.LoadAverage())
	selector, placementRef := e.selection(ctx, b, map[string]string{"bench": "schedule"}, total)

	actx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	ag := newAgents(e.works, backuplocation.Kind, total)
	ag.run(actx)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: locationName},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget:   storage(),
			ClusterSelector: selector,
			PlacementRef:    placementRef,
		},
	}
	if err := e.c.Create(ctx, loc); err != nil {
		b.Fatal(err)
	}
	waitFor(ctx, b, "the location Valid on every cluster", func() bool {
		l := &fleetv1alpha1.BackupLocation{}
		return e.c.Get(ctx, client.ObjectKeyFromObject(loc), l) == nil && l.Status.ObservedGeneration == l.Generation &&
			l.Status.Phase == fleetv1alpha1.LocationValid && l.Status.ValidClusters == int32(total)
	})
	if _, idle := waitQuiet(hub.Pid(), 5*time.Minute); !idle {
		b.Log("lifeboat-hub was not idle before the schedule")
	}
	stopAgents()

	policy := &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "hourly"},
		Spec:       fleetv1alpha1.SchedulePolicySpec{Interval: &metav1.Duration{Duration: time.Hour}, Retention: &fleetv1alpha1.Retention{KeepLast: 24}},
	}
	if err := e.c.Create(ctx, policy); err != nil {
		b.Fatal(err)
	}
	sched := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "fleet"},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          backupv1alpha1.ObjectName(policy.Name),
			ClusterSelector: selector,
			PlacementRef:    placementRef,
			Template:        fleetv1alpha1.BackupTemplate{Location: locationName},
		},
	}
	bw, err := e.c.Watch(ctx, &fleetv1alpha1.BackupList{}, client.InNamespace(tenant))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { bw.Stop() }()
	ww, err := e.c.Watch(ctx, &workv1.ManifestWorkList{}, client.MatchingLabels{dispatch.LabelKind: dispatch.LabelValue(backup.Kind)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { ww.Stop() }()
	pids := map[string]int{"lifeboat-hub": hub.Pid(), "test process": os.Getpid()}
	if p := e.process("-kube-apiserver"); p != nil {
		pids["kube-apiserver"] = p.Pid()
	}
	if p := e.process("-etcd"); p != nil {
		pids["etcd"] = p.Pid()
	}
	cpu := newCPUMeter(pids)
	reqBefore, err := e.apiRequests(ctx, tickResources...)
	if err != nil {
		b.Fatal(err)
	}

	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		e.profile(ctx, b, "profile?seconds=60", fmt.Sprintf("tick%d-cpu.pprof", total))
	}()
	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	if err := e.c.Create(ctx, sched); err != nil {
		b.Fatal(err)
	}
	var (
		created, dispatched, works       = map[string]bool{}, map[string]bool{}, map[string]bool{}
		allCreated, allDispatched, allWk time.Duration
	)
	var sample *workv1.ManifestWork
	rewatched := 0
	deadline := time.After(20 * time.Minute)
	for allDispatched == 0 || allWk == 0 {
		select {
		case ev, open := <-bw.ResultChan():
			if !open {
				// The API server ends a watch that falls behind (on a busy
				// machine); a new one starts with every Backup as Added.
				if bw, err = e.c.Watch(ctx, &fleetv1alpha1.BackupList{}, client.InNamespace(tenant)); err != nil {
					b.Fatal(err)
				}
				rewatched++
				continue
			}
			bk, ok := ev.Object.(*fleetv1alpha1.Backup)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			created[bk.Name] = true
			if len(created) == total && allCreated == 0 {
				allCreated = time.Since(start)
			}
			if meta.IsStatusConditionTrue(bk.Status.Conditions, fleetv1alpha1.ConditionDispatched) {
				dispatched[bk.Name] = true
				if len(dispatched) == total && allDispatched == 0 {
					allDispatched = time.Since(start)
				}
			}
		case ev, open := <-ww.ResultChan():
			if !open {
				if ww, err = e.c.Watch(ctx, &workv1.ManifestWorkList{}, client.MatchingLabels{dispatch.LabelKind: dispatch.LabelValue(backup.Kind)}); err != nil {
					b.Fatal(err)
				}
				rewatched++
				continue
			}
			if mw, ok := ev.Object.(*workv1.ManifestWork); ok && ev.Type == watch.Added {
				if sample == nil {
					sample = mw
				}
				works[mw.Namespace+"/"+mw.Name] = true
				if len(works) == total && allWk == 0 {
					allWk = time.Since(start)
				}
			}
		case <-deadline:
			b.Fatalf("after 20 minutes: %d Backups, %d dispatched, %d works", len(created), len(dispatched), len(works))
		}
	}
	b.StopTimer()
	used := cpu.used()
	reqAt, err := e.apiRequests(ctx, tickResources...)
	if err != nil {
		b.Fatal(err)
	}
	req := reqAt.since(reqBefore)
	hwm, _ := proc.MemKiB(hub.Pid(), "VmHWM")
	st := &fleetv1alpha1.BackupSchedule{}
	if err := e.c.Get(ctx, client.ObjectKeyFromObject(sched), st); err != nil {
		b.Fatal(err)
	}
	if len(created) != total {
		b.Errorf("%d Backups for %d clusters", len(created), total)
	}
	<-profiled
	_ = hub.Stop(10 * time.Second)

	base := baselineCreateBackups(ctx, b, e.c, "schedule-baseline", total)
	ratio := allCreated.Seconds() / base.Seconds()
	tickBase := baselineTick(ctx, b, e.c, "schedule-tick-baseline", clusters, sample)
	tickRatio := allWk.Seconds() / tickBase.Seconds()
	logf(b, "one run over %d clusters: all Backups created %v after the schedule, all works written %v, all Dispatched %v; schedule status lists %d clusters, Ready %v; "+
		"setup: lifeboat-hub idle %v after start; load average %s",
		total, allCreated.Round(time.Millisecond), allWk.Round(time.Millisecond), allDispatched.Round(time.Millisecond), len(st.Status.Clusters),
		meta.FindStatusCondition(st.Status.Conditions, fleetv1alpha1.ConditionReady), settled.Round(time.Millisecond), proc.LoadAverage())
	logf(b, "baseline: plain create loop of %d Backups (16 workers) %v; ratio s-to-create/baseline %.2f; CPU: %s; lifeboat-hub peak RSS %.1f MiB%s",
		total, base.Round(time.Millisecond), ratio, formatCPU(used), float64(hwm)/1024, e.ocmRSS())
	b.ReportMetric(allCreated.Seconds(), "s-to-create")
	b.ReportMetric(allDispatched.Seconds(), "s-to-dispatch")
	b.ReportMetric(allWk.Seconds(), "s-to-works")
	b.ReportMetric(base.Seconds(), "s-baseline")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(hwm)/1024, "hub-peak-RSS-MiB")
	b.ReportMetric(req.sum("manifestworks", "GET"), "work-GETs")
	logf(b, "API requests until all dispatched: %s; watches started again: %d", req, rewatched)
	logf(b, "tick baseline: plain loop (16 workers) creating a Backup and a ManifestWork like the hub's (%.1f KiB of manifest) for each of %d clusters %v; ratio s-to-works/tick baseline %.2f",
		float64(len(sample.Spec.Workload.Manifests[0].Raw))/1024, total, tickBase.Round(time.Millisecond), tickRatio)
	b.ReportMetric(tickBase.Seconds(), "s-tick-baseline")
	b.ReportMetric(tickRatio, "tick-ratio")
}

// tickResources are those whose API requests the schedule benchmark counts.
var tickResources = []string{"manifestworks", "backups", "backuplocations", "backupschedules", "placementdecisions"}

// baselineTick creates, for each cluster, a Backup in namespace and a
// ManifestWork with sample's spec in the cluster's namespace, 16 at once,
// and returns how long that took: the objects one schedule run makes.
func baselineTick(ctx context.Context, b *testing.B, c client.Client, namespace string, clusters []string, sample *workv1.ManifestWork) time.Duration {
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var eg errgroup.Group
	eg.SetLimit(16)
	for _, cluster := range clusters {
		eg.Go(func() error {
			if err := c.Create(ctx, &fleetv1alpha1.Backup{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: cluster},
				Spec:       fleetv1alpha1.BackupSpec{Cluster: backupv1alpha1.ClusterName(cluster), BackupTemplate: fleetv1alpha1.BackupTemplate{Location: locationName}},
			}); err != nil {
				return err
			}
			return c.Create(ctx, &workv1.ManifestWork{
				ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: "tick-baseline"},
				Spec:       *sample.Spec.DeepCopy(),
			})
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// baselineCreateBackups creates n Backups in a namespace of their own with 16
// workers and returns how long that took.
func baselineCreateBackups(ctx context.Context, b *testing.B, c client.Client, namespace string, n int) time.Duration {
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var eg errgroup.Group
	eg.SetLimit(16)
	for i := range n {
		eg.Go(func() error {
			return c.Create(ctx, &fleetv1alpha1.Backup{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("base-%05d", i)},
				Spec:       fleetv1alpha1.BackupSpec{Cluster: backupv1alpha1.ClusterName(fmt.Sprintf("sched-%04d", i%1000)), BackupTemplate: fleetv1alpha1.BackupTemplate{Location: locationName}},
			})
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
