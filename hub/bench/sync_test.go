package bench

import (
	"context"
	"encoding/json"
	"fmt"

	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupsync"
)

// BenchmarkSync10000 measures the hub side of a sync of a bucket holding
// 10,000 backups the hub does not know: from the moment the (simulated)
// spoke reports its 50 catalog pages of 200 written, until the lifeboat-hub
// process has created the 10,000 Backups with their status and completed the
// BackupSync; and lifeboat-hub's peak RSS.
//
// Baseline, against the same API server: a plain loop with the importer's
// concurrency (8) that creates 10,000 Backups and writes each one's status
// once, the floor for "one object and one status write per backup".
//
// The spoke's listing is not part of it (see spoke/reconcilers/backupsync).
func BenchmarkSync10000(b *testing.B) {
	const total, pageSize = 10000, 200
	if b.N > 1 {
		b.Skip("BenchmarkSync10000 runs once; use -benchtime=1x")
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e := startHubEnv(ctx, b, "sync")
	const cluster = "sync-0000"
	if err := e.createClusters(ctx, []string{cluster}, map[string]string{"bench": "sync"}); err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"lifeboat-system", "baseline"} {
		ensure(ctx, b, e.c, ns)
	}

	baseTook := baselineBackups(ctx, b, e.c, "baseline", total)

	hub := e.startHub(ctx, b)
	actx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	newAgents(e.works, backuplocation.Kind, 1).run(actx)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: locationName},
		Spec:       fleetv1alpha1.BackupLocationSpec{StorageTarget: storage(), ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "sync"}}},
	}
	if err := e.c.Create(ctx, loc); err != nil {
		b.Fatal(err)
	}
	waitFor(ctx, b, "the location Valid", func() bool {
		return e.c.Get(ctx, client.ObjectKeyFromObject(loc), loc) == nil && loc.Status.Phase == fleetv1alpha1.LocationValid
	})
	settled, _ := waitQuiet(hub.Pid(), 2*time.Minute)
	rssBefore, _ := proc.MemKiB(hub.Pid(), "VmRSS")

	s := &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "bench"}, Spec: fleetv1alpha1.BackupSyncSpec{Location: locationName}}
	if err := e.c.Create(ctx, s); err != nil {
		b.Fatal(err)
	}
	mw := &workv1.ManifestWork{}
	waitFor(ctx, b, "the spoke BackupSync's work", func() bool {
		return e.c.Get(ctx, client.ObjectKey{Namespace: cluster, Name: dispatch.Name(backupsync.Kind, tenant, "bench")}, mw) == nil
	})
	if err := e.c.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
		b.Fatal(err)
	}

	// The spoke's pages, written before it reports Completed (not timed).
	done := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	var eg errgroup.Group
	eg.SetLimit(8)
	for p := 0; p < total/pageSize; p++ {
		eg.Go(func() error {
			entries := make([]fleetv1alpha1.BackupSummary, pageSize)
			for i := range entries {
				entries[i] = fleetv1alpha1.BackupSummary{
					ID: backupv1alpha1.BackupID(fmt.Sprintf("b-%05d", p*pageSize+i)), SourceCluster: "other-hub-east",
					Hub:   &backupv1alpha1.HubObjectReference{Namespace: "tenant-east", Name: backupv1alpha1.ObjectName(fmt.Sprintf("nightly-%05d", p*pageSize+i))},
					Phase: backupv1alpha1.ApplicationBackupSuccess, Items: 1000, SizeBytes: 1 << 20, StartTime: &done, CompletionTime: &done,
				}
			}
			return e.c.Create(ctx, &fleetv1alpha1.BackupCatalog{
				ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: fmt.Sprintf("bench-p%05d", p), Labels: map[string]string{fleetv1alpha1.LabelSyncUID: string(s.UID)}},
				Spec: fleetv1alpha1.BackupCatalogSpec{
					Cluster: cluster, Page: int32(p), Final: p == total/pageSize-1, Entries: entries,
					Sync:     &backupv1alpha1.HubObjectReference{Namespace: tenant, Name: "bench", UID: s.UID},
					Location: &backupv1alpha1.HubObjectReference{Namespace: tenant, Name: locationName},
				},
			})
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}

	counted := []string{"backups", "backupsyncs", "backupcatalogs", "leases", "backuplocations"}
	reqBefore, err := e.apiRequests(ctx, counted...)
	if err != nil {
		b.Fatal(err)
	}
	hubCPUBefore, _ := cpuTime(hub.Pid())
	b.StartTimer()
	start := time.Now()
	if err := syncCompleted(ctx, e, mw, total, total/pageSize); err != nil {
		b.Fatal(err)
	}
	waitFor(ctx, b, "the BackupSync Completed", func() bool {
		return e.c.Get(ctx, client.ObjectKeyFromObject(s), s) == nil && (s.Status.Phase == backupv1alpha1.TaskCompleted || s.Status.Phase == backupv1alpha1.TaskFailed)
	})
	took := time.Since(start)
	b.StopTimer()
	hwm, _ := proc.MemKiB(hub.Pid(), "VmHWM")
	hubCPU, _ := cpuTime(hub.Pid())
	reqAfter, err := e.apiRequests(ctx, counted...)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("API requests until Completed: %s; lifeboat-hub CPU %v", reqAfter.since(reqBefore), (hubCPU - hubCPUBefore).Round(time.Millisecond))
	if s.Status.Phase != backupv1alpha1.TaskCompleted || s.Status.Imported != total {
		b.Fatalf("sync %s: imported %d of %d: %+v", s.Status.Phase, s.Status.Imported, total, s.Status.Conditions)
	}
	b.Logf("hub imported %d backups in %v (baseline create+status loop: %v, ratio %.2f); lifeboat-hub RSS %.1f MiB before, peak %.1f MiB; hub idle %v after start; load average %s",
		total, took.Round(time.Millisecond), baseTook.Round(time.Millisecond), took.Seconds()/baseTook.Seconds(),
		float64(rssBefore)/1024, float64(hwm)/1024, settled.Round(time.Millisecond), proc.LoadAverage())
	b.ReportMetric(took.Seconds(), "s-to-imported")
	b.ReportMetric(baseTook.Seconds(), "s-baseline")
	b.ReportMetric(float64(hwm)/1024, "hub-peak-RSS-MiB")
}

// syncCompleted writes the feedback of a spoke BackupSync that wrote pages.
func syncCompleted(ctx context.Context, e *hubEnv, mw *workv1.ManifestWork, found, pages int64) error {
	st := agentStatus(mw, time.Now())
	str := func(name, v string) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.String, String: &v}}
	}
	num := func(name string, v int64) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.Integer, Integer: &v}}
	}
	st.ResourceStatus.Manifests[0].StatusFeedbacks.Values = []workv1.FeedbackValue{
		str("lifeboat.generation", mw.Annotations[dispatch.AnnotationGeneration]), num("lifeboat.objectGeneration", 1),
		num("observedGeneration", 1), str("phase", "Completed"), num("found", found), num("pages", pages),
	}
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = e.works.WorkV1().ManifestWorks(mw.Namespace).Patch(ctx, mw.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// baselineBackups creates n Backups in namespace with 8 workers and writes
// each one's status once, and returns how long that took.
func baselineBackups(ctx context.Context, b *testing.B, c client.Client, namespace string, n int) time.Duration {
	start := time.Now()
	var eg errgroup.Group
	eg.SetLimit(8)
	var created atomic.Int64
	done := metav1.NewTime(time.Now().Truncate(time.Second))
	for i := range n {
		eg.Go(func() error {
			bk := &fleetv1alpha1.Backup{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("base-%05d", i), Labels: map[string]string{fleetv1alpha1.SyncOriginLabel: fleetv1alpha1.SyncOriginValue}},
				Spec:       fleetv1alpha1.BackupSpec{Cluster: "other-hub-east", BackupTemplate: fleetv1alpha1.BackupTemplate{Location: locationName}},
			}
			if err := c.Create(ctx, bk); err != nil {
				return err
			}
			base := bk.DeepCopy()
			bk.Status.Phase, bk.Status.Origin, bk.Status.CompletionTime = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSynced, &done
			bk.Status.BackupID = backupv1alpha1.BackupID(fmt.Sprintf("b-%05d", i))
			created.Add(1)
			return c.Status().Patch(ctx, bk, client.MergeFrom(base))
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func ensure(ctx context.Context, b *testing.B, c client.Client, ns string) {
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})); err != nil {
		b.Fatal(err)
	}
}

func waitFor(ctx context.Context, b *testing.B, what string, cond func() bool) {
	for !cond() {
		if ctx.Err() != nil {
			b.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
