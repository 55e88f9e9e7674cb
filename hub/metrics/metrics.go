// Package metrics exposes the hub's picture of the fleet to Prometheus, on
// controller-runtime's registry, which the manager serves over HTTPS with
// authentication and authorization (see docs/operations.md).
//
// Two kinds of series: Collector reads the hub's objects from the manager's
// cache at every scrape and keeps no state, so its gauges say exactly what
// the API says now; the run histograms and counters are observed by the
// reconcilers as runs are dispatched and end.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	kevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
)

// Names of every series, so the dashboard test can check it uses only these.
const (
	LocationClusterValid        = "lifeboat_location_cluster_valid"
	LocationLastSync            = "lifeboat_location_last_sync_timestamp_seconds"
	Backups                     = "lifeboat_backups"
	Restores                    = "lifeboat_restores"
	Syncs                       = "lifeboat_syncs"
	ClusterLastSuccessfulBackup = "lifeboat_cluster_last_successful_backup_timestamp_seconds"
	ScheduleLastSuccessful      = "lifeboat_schedule_last_successful_backup_timestamp_seconds"
	ClusterAvailable            = "lifeboat_cluster_available"
	DiscoveryClusters           = "lifeboat_discovery_clusters"
	RunDuration                 = "lifeboat_run_duration_seconds"
	RunItems                    = "lifeboat_run_items_total"
	RunBytes                    = "lifeboat_run_bytes_total"
	DispatchLatency             = "lifeboat_dispatch_latency_seconds"
	ScheduleRunsSkipped         = "lifeboat_schedule_runs_skipped_total"
	ScheduleRetries             = "lifeboat_schedule_retries_total"
	ProtectionNamespaces        = "lifeboat_protection_namespaces"
	ProtectionInventory         = "lifeboat_protection_inventory_timestamp_seconds"
)

var (
	locationClusterValid = prometheus.NewDesc(LocationClusterValid,
		"1 if the location is Valid on the cluster (its BackupTarget validated), else 0; phase and reason say why.",
		[]string{"namespace", "location", "cluster", "phase", "reason"}, nil)
	locationLastSync = prometheus.NewDesc(LocationLastSync,
		"When a sync of the location last completed its import (Unix seconds).",
		[]string{"namespace", "location"}, nil)
	backups = prometheus.NewDesc(Backups,
		"Hub Backups by phase and origin.", []string{"namespace", "phase", "origin"}, nil)
	restores = prometheus.NewDesc(Restores,
		"Hub Restores by phase.", []string{"namespace", "phase"}, nil)
	syncs = prometheus.NewDesc(Syncs,
		"Hub BackupSyncs by phase.", []string{"namespace", "phase"}, nil)
	clusterLastSuccessful = prometheus.NewDesc(ClusterLastSuccessfulBackup,
		"When the newest restorable (Success or PartialSuccess) Backup of the cluster in the namespace started (Unix seconds).",
		[]string{"namespace", "cluster"}, nil)
	scheduleLastSuccessful = prometheus.NewDesc(ScheduleLastSuccessful,
		"When the schedule's newest restorable Backup of the cluster started (Unix seconds).",
		[]string{"namespace", "schedule", "cluster"}, nil)
	clusterAvailable = prometheus.NewDesc(ClusterAvailable,
		"1 if the cluster's BackupCluster is Available (its spoke reports), else 0.", []string{"cluster"}, nil)
	discoveryClusters = prometheus.NewDesc(DiscoveryClusters,
		"Clusters of the discovery's latest run, by state (current, discovered, unmanaged, remanaged, skipped, failed).",
		[]string{"discovery", "state"}, nil)
	protectionNamespaces = prometheus.NewDesc(ProtectionNamespaces,
		"The cluster's namespaces by protection verdict (Protected, AtRisk, Unprotected), from its BackupCluster's status.protection.",
		[]string{"cluster", "verdict"}, nil)
	protectionInventory = prometheus.NewDesc(ProtectionInventory,
		"When the cluster's spoke last listed its namespaces for the protection report (Unix seconds).",
		[]string{"cluster"}, nil)
)

var (
	runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    RunDuration,
		Help:    "How long backups and restores ran on their cluster, by final phase.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1 s to 9 h
	}, []string{"kind", "phase"})
	runItems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RunItems, Help: "Items handled by finished backups and restores.",
	}, []string{"kind"})
	runBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RunBytes, Help: "Bytes written by finished backups and read by finished restores.",
	}, []string{"kind"})
	dispatchLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    DispatchLatency,
		Help:    "Time from a Backup's or Restore's creation to its first dispatch to a cluster.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms to 7 min
	}, []string{"kind"})
	scheduleRunsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ScheduleRunsSkipped, Help: "Runs a schedule skipped for a cluster, by reason (StartingDeadline, ConcurrencyForbid).",
	}, []string{"namespace", "schedule", "reason"})
	scheduleRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ScheduleRetries, Help: "Retry attempts a schedule created for failed runs.",
	}, []string{"namespace", "schedule"})
)

// Register adds the collector reading r and the run series to
// controller-runtime's registry.
func Register(r client.Reader) {
	crmetrics.Registry.MustRegister(&Collector{Reader: r}, runDuration, runItems, runBytes, dispatchLatency,
		scheduleRunsSkipped, scheduleRetries)
}

// Finished reports a run that ended: its Event on obj (events.Finished) and
// its duration, items and bytes.
func Finished(rec kevents.EventRecorder, obj runtime.Object, r events.Run) {
	events.Finished(rec, obj, r)
	if r.Start != nil && r.End != nil {
		runDuration.WithLabelValues(r.Kind, r.Phase).Observe(r.End.Sub(r.Start.Time).Seconds())
	}
	if r.Progress != nil {
		runItems.WithLabelValues(r.Kind).Add(float64(r.Progress.ItemsDone))
		runBytes.WithLabelValues(r.Kind).Add(float64(r.Progress.BytesDone))
	}
}

// Dispatched observes the time from an object's creation to its first dispatch.
func Dispatched(kind string, created time.Time) {
	dispatchLatency.WithLabelValues(kind).Observe(time.Since(created).Seconds())
}

// Skipped counts n clusters for which schedule namespace/name skipped a run
// for reason.
func Skipped(namespace, name, reason string, n int) {
	scheduleRunsSkipped.WithLabelValues(namespace, name, reason).Add(float64(n))
}

// Retried counts n retry attempts schedule namespace/name created.
func Retried(namespace, name string, n int) {
	scheduleRetries.WithLabelValues(namespace, name).Add(float64(n))
}

// Collector reports the hub objects' state at each scrape.
type Collector struct {
	Reader client.Reader
}

// Describe sends the descriptors of every series the collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{locationClusterValid, locationLastSync, backups, restores, syncs,
		clusterLastSuccessful, scheduleLastSuccessful, clusterAvailable, discoveryClusters, protectionNamespaces, protectionInventory} {
		ch <- d
	}
}

// Collect lists the hub's objects from the cache (read-only, not copied) and
// reports them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, collect := range []func(context.Context, chan<- prometheus.Metric) error{
		c.locations, c.backups, c.restores, c.syncs, c.schedules, c.clusters, c.discoveries,
	} {
		if err := collect(ctx, ch); err != nil {
			ctrl.Log.WithName("metrics").Error(err, "Failed to list objects for metrics")
		}
	}
}

func (c *Collector) list(ctx context.Context, list client.ObjectList) error {
	return c.Reader.List(ctx, list, client.UnsafeDisableDeepCopy)
}

func (c *Collector) locations(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.BackupLocationList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		l := &list.Items[i]
		conns, err := locations.Connections(ctx, c.Reader, l)
		if err != nil {
			return err
		}
		for _, conn := range conns {
			ch <- prometheus.MustNewConstMetric(locationClusterValid, prometheus.GaugeValue, boolValue(conn.Phase == backupv1alpha1.TargetValid),
				l.Namespace, l.Name, conn.Cluster, string(conn.Phase), conn.Reason)
		}
		if l.Status.LastSyncTime != nil {
			ch <- prometheus.MustNewConstMetric(locationLastSync, prometheus.GaugeValue, unix(l.Status.LastSyncTime.Time), l.Namespace, l.Name)
		}
	}
	return nil
}

// key is a label pair for counting.
type key struct{ a, b, c string }

func (c *Collector) backups(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.BackupList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	counts := map[key]int{}
	newest := map[key]time.Time{}
	for i := range list.Items {
		b := &list.Items[i]
		counts[key{b.Namespace, string(b.Status.Phase), string(b.Status.Origin)}]++
		if b.Status.Phase.Restorable() && b.Status.StartTime != nil && b.DeletionTimestamp.IsZero() {
			k := key{a: b.Namespace, b: string(b.Spec.Cluster)}
			if t := b.Status.StartTime.Time; t.After(newest[k]) {
				newest[k] = t
			}
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(backups, prometheus.GaugeValue, float64(n), k.a, k.b, k.c)
	}
	for k, t := range newest {
		ch <- prometheus.MustNewConstMetric(clusterLastSuccessful, prometheus.GaugeValue, unix(t), k.a, k.b)
	}
	return nil
}

func (c *Collector) restores(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.RestoreList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	countPhases(ch, restores, list.Items, func(r *fleetv1alpha1.Restore) (string, string) { return r.Namespace, string(r.Status.Phase) })
	return nil
}

func (c *Collector) syncs(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.BackupSyncList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	countPhases(ch, syncs, list.Items, func(s *fleetv1alpha1.BackupSync) (string, string) { return s.Namespace, string(s.Status.Phase) })
	return nil
}

// countPhases reports desc: how many of items are in each namespace and
// phase, as of says.
func countPhases[T any](ch chan<- prometheus.Metric, desc *prometheus.Desc, items []T, of func(*T) (namespace, phase string)) {
	counts := map[key]int{}
	for i := range items {
		namespace, phase := of(&items[i])
		counts[key{a: namespace, b: phase}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), k.a, k.b)
	}
}

func (c *Collector) schedules(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.BackupScheduleList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		s := &list.Items[i]
		for _, cl := range s.Status.Clusters {
			if cl.LastSuccessfulTime != nil {
				ch <- prometheus.MustNewConstMetric(scheduleLastSuccessful, prometheus.GaugeValue, unix(cl.LastSuccessfulTime.Time),
					s.Namespace, s.Name, cl.Cluster)
			}
		}
	}
	return nil
}

func (c *Collector) clusters(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.BackupClusterList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		bc := &list.Items[i]
		ch <- prometheus.MustNewConstMetric(clusterAvailable, prometheus.GaugeValue,
			boolValue(meta.IsStatusConditionTrue(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable)), bc.Name)
		p := bc.Status.Protection
		if p == nil || p.Reason != "" {
			continue
		}
		for verdict, n := range map[fleetv1alpha1.ProtectionVerdict]int32{fleetv1alpha1.Protected: p.Protected,
			fleetv1alpha1.AtRisk: p.AtRisk, fleetv1alpha1.Unprotected: p.Unprotected} {
			ch <- prometheus.MustNewConstMetric(protectionNamespaces, prometheus.GaugeValue, float64(n), bc.Name, string(verdict))
		}
		if p.InventoryTime != nil {
			ch <- prometheus.MustNewConstMetric(protectionInventory, prometheus.GaugeValue, unix(p.InventoryTime.Time), bc.Name)
		}
	}
	return nil
}

func (c *Collector) discoveries(ctx context.Context, ch chan<- prometheus.Metric) error {
	list := &fleetv1alpha1.ClusterDiscoveryList{}
	if err := c.list(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		d := &list.Items[i]
		n := d.Status.Counts
		if n == nil {
			continue
		}
		for state, v := range map[string]int32{"current": n.Current, "discovered": n.Discovered, "unmanaged": n.Unmanaged,
			"remanaged": n.Remanaged, "skipped": n.Skipped, "failed": n.Failed} {
			ch <- prometheus.MustNewConstMetric(discoveryClusters, prometheus.GaugeValue, float64(v), d.Name, state)
		}
	}
	return nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
