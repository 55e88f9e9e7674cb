package metrics

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/events"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

// hubClient talks to the package's hub: a real kube-apiserver with the hub CRDs.
var hubClient client.Client

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "metrics", &hubClient, func(ctrl.Manager) error { return nil }))
}

// The collector reports what the hub's objects say, at each scrape.
func TestCollectorReportsTheFleetAsTheAPISaysIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const ns = "team-metrics"
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	at := func(h int) *metav1.Time { t := metav1.NewTime(t0.Add(time.Duration(h) * time.Hour)); return &t }

	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct1", Container: "backups", Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
			Clusters: []backupv1alpha1.ClusterName{"m-1", "m-2"},
		},
	}
	create(g, loc, func() { loc.Status.LastSyncTime = at(5) })
	g.Expect(locationstest.SetConnections(context.Background(), hubClient, loc,
		fleetv1alpha1.ClusterConnection{Cluster: "m-1", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded"}},
		fleetv1alpha1.ClusterConnection{Cluster: "m-2", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "AuthenticationFailed"}},
	)).To(Succeed())
	for i, st := range []struct {
		cluster string
		phase   fleetv1alpha1.BackupPhase
		origin  fleetv1alpha1.BackupOrigin
		start   *metav1.Time
	}{
		{"m-1", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSchedule, at(1)},
		{"m-1", fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.OriginSchedule, at(3)}, // m-1's newest restorable
		{"m-1", fleetv1alpha1.BackupFailed, fleetv1alpha1.OriginSchedule, at(4)},         // newer, but not restorable
		{"m-2", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub, at(2)},
	} {
		b := &fleetv1alpha1.Backup{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("b%d", i)},
			Spec:       fleetv1alpha1.BackupSpec{Cluster: backupv1alpha1.ClusterName(st.cluster), BackupTemplate: fleetv1alpha1.BackupTemplate{Location: "primary"}},
		}
		create(g, b, func() { b.Status.Phase, b.Status.Origin, b.Status.StartTime = st.phase, st.origin, st.start })
	}
	rs := &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r0"}, Spec: fleetv1alpha1.RestoreSpec{Backup: "b0"}}
	create(g, rs, func() { rs.Status.Phase = backupv1alpha1.RestoreSuccess })
	s := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
		Spec: fleetv1alpha1.BackupScheduleSpec{Policy: "daily", ClusterSelector: &metav1.LabelSelector{},
			Template: fleetv1alpha1.BackupTemplate{Location: "primary"}},
	}
	create(g, s, func() {
		s.Status.Clusters = []fleetv1alpha1.ScheduledCluster{{Cluster: "m-1", LastSuccessfulTime: at(3)}, {Cluster: "m-2"}}
	})
	for name, available := range map[string]metav1.ConditionStatus{"m-1": metav1.ConditionTrue, "m-2": metav1.ConditionFalse} {
		bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
		create(g, bc, func() {
			bc.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ConditionAvailable, Status: available, Reason: "Test", LastTransitionTime: metav1.Now()}}
			// m-1's spoke reported 6 namespaces; m-2's none yet: no verdicts, no series.
			bc.Status.Protection = &fleetv1alpha1.ProtectionReport{Reason: fleetv1alpha1.ReasonNoInventory}
			if name == "m-1" {
				bc.Status.Protection = &fleetv1alpha1.ProtectionReport{InventoryTime: at(6), Namespaces: 6, Protected: 3, AtRisk: 1, Unprotected: 2}
			}
		})
	}

	reg := prometheus.NewPedanticRegistry()
	g.Expect(reg.Register(&Collector{Reader: hubClient})).To(Succeed())
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP lifeboat_backups Hub Backups by phase and origin.
# TYPE lifeboat_backups gauge
lifeboat_backups{namespace="team-metrics",origin="Hub",phase="Success"} 1
lifeboat_backups{namespace="team-metrics",origin="Schedule",phase="Failed"} 1
lifeboat_backups{namespace="team-metrics",origin="Schedule",phase="PartialSuccess"} 1
lifeboat_backups{namespace="team-metrics",origin="Schedule",phase="Success"} 1
# HELP lifeboat_cluster_available 1 if the cluster's BackupCluster is Available (its spoke reports), else 0.
# TYPE lifeboat_cluster_available gauge
lifeboat_cluster_available{cluster="m-1"} 1
lifeboat_cluster_available{cluster="m-2"} 0
# HELP lifeboat_cluster_last_successful_backup_timestamp_seconds When the newest restorable (Success or PartialSuccess) Backup of the cluster in the namespace started (Unix seconds).
# TYPE lifeboat_cluster_last_successful_backup_timestamp_seconds gauge
lifeboat_cluster_last_successful_backup_timestamp_seconds{cluster="m-1",namespace="team-metrics"} `+unixText(at(3))+`
lifeboat_cluster_last_successful_backup_timestamp_seconds{cluster="m-2",namespace="team-metrics"} `+unixText(at(2))+`
# HELP lifeboat_location_cluster_valid 1 if the location is Valid on the cluster (its BackupTarget validated), else 0; phase and reason say why.
# TYPE lifeboat_location_cluster_valid gauge
lifeboat_location_cluster_valid{cluster="m-1",location="primary",namespace="team-metrics",phase="Valid",reason="ValidationSucceeded"} 1
lifeboat_location_cluster_valid{cluster="m-2",location="primary",namespace="team-metrics",phase="Invalid",reason="AuthenticationFailed"} 0
# HELP lifeboat_location_last_sync_timestamp_seconds When a sync of the location last completed its import (Unix seconds).
# TYPE lifeboat_location_last_sync_timestamp_seconds gauge
lifeboat_location_last_sync_timestamp_seconds{location="primary",namespace="team-metrics"} `+unixText(at(5))+`
# HELP lifeboat_protection_inventory_timestamp_seconds When the cluster's spoke last listed its namespaces for the protection report (Unix seconds).
# TYPE lifeboat_protection_inventory_timestamp_seconds gauge
lifeboat_protection_inventory_timestamp_seconds{cluster="m-1"} `+unixText(at(6))+`
# HELP lifeboat_protection_namespaces The cluster's namespaces by protection verdict (Protected, AtRisk, Unprotected), from its BackupCluster's status.protection.
# TYPE lifeboat_protection_namespaces gauge
lifeboat_protection_namespaces{cluster="m-1",verdict="AtRisk"} 1
lifeboat_protection_namespaces{cluster="m-1",verdict="Protected"} 3
lifeboat_protection_namespaces{cluster="m-1",verdict="Unprotected"} 2
# HELP lifeboat_restores Hub Restores by phase.
# TYPE lifeboat_restores gauge
lifeboat_restores{namespace="team-metrics",phase="Success"} 1
# HELP lifeboat_schedule_last_successful_backup_timestamp_seconds When the schedule's newest restorable Backup of the cluster started (Unix seconds).
# TYPE lifeboat_schedule_last_successful_backup_timestamp_seconds gauge
lifeboat_schedule_last_successful_backup_timestamp_seconds{cluster="m-1",namespace="team-metrics",schedule="nightly"} `+unixText(at(3))+`
`), Backups, ClusterAvailable, ClusterLastSuccessfulBackup, LocationClusterValid, LocationLastSync, ProtectionInventory, ProtectionNamespaces, Restores, ScheduleLastSuccessful)).To(Succeed())

	t.Log("a scrape says what the API says now")
	g.Expect(hubClient.Delete(ctx, rs)).To(Succeed())
	g.Expect(testutil.GatherAndCount(reg, Restores)).To(Equal(0))
}

// A finished run adds its duration, items and bytes; a dispatch its
// latency; a schedule's skipped runs and retries their counts.
func TestRunsAreObserved(t *testing.T) {
	g := NewWithT(t)
	items, bytes := testutil.ToFloat64(runItems.WithLabelValues("Restore")), testutil.ToFloat64(runBytes.WithLabelValues("Restore"))
	start := metav1.NewTime(time.Now().Add(-90 * time.Second))
	end := metav1.Now()
	rec := kevents.NewFakeRecorder(1)
	Finished(rec, &backupv1alpha1.ApplicationRestore{}, events.Run{Kind: "Restore", Phase: "Success", Success: true, Start: &start, End: &end,
		Progress: &backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 40, BytesDone: 4096}})
	g.Expect(<-rec.Events).To(HavePrefix("Normal RestoreSuccess"))
	g.Expect(testutil.ToFloat64(runItems.WithLabelValues("Restore"))).To(Equal(items + 40))
	g.Expect(testutil.ToFloat64(runBytes.WithLabelValues("Restore"))).To(Equal(bytes + 4096))
	g.Expect(testutil.CollectAndCount(runDuration, RunDuration)).To(BeNumerically(">=", 1))
	Dispatched("Backup", time.Now().Add(-time.Second))
	g.Expect(testutil.CollectAndCount(dispatchLatency, DispatchLatency)).To(Equal(1))
	Skipped("team-a", "nightly", "ConcurrencyForbid", 2)
	g.Expect(testutil.ToFloat64(scheduleRunsSkipped.WithLabelValues("team-a", "nightly", "ConcurrencyForbid"))).To(Equal(2.0))
	Retried("team-a", "nightly", 1)
	g.Expect(testutil.ToFloat64(scheduleRetries.WithLabelValues("team-a", "nightly"))).To(Equal(1.0))
}

// create creates obj, then sets its status with setStatus.
func create(g *WithT, obj client.Object, setStatus func()) {
	ctx := context.Background()
	g.Expect(hubClient.Create(ctx, obj)).To(Succeed())
	setStatus()
	g.Expect(hubClient.Status().Update(ctx, obj)).To(Succeed())
}

func unixText(t *metav1.Time) string { return fmt.Sprint(unix(t.Time)) }
