package protection

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

const timeout = 30 * time.Second

func ensureNamespace(g *WithT, name string) {
	g.Expect(client.IgnoreAlreadyExists(hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
}

// cluster creates BackupCluster name and its namespace.
func cluster(g *WithT, name string) {
	ensureNamespace(g, name)
	g.Expect(hubClient.Create(context.Background(), &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}})).To(Succeed())
}

// writeInventory writes the inventory page into namespace, speaking of cluster.
func writeInventory(g *WithT, namespace, cluster string, names ...string) {
	page := inventoryPage(cluster, names...)
	page.Namespace = namespace
	page.Spec.Inventory.ObservedTime = metav1.Now()
	g.Expect(hubClient.Create(context.Background(), page)).To(Succeed())
}

func report(g Gomega, name string) *fleetv1alpha1.ProtectionReport {
	bc := &fleetv1alpha1.BackupCluster{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Name: name}, bc)).To(Succeed())
	g.Expect(bc.Status.Protection).NotTo(BeNil())
	return bc.Status.Protection
}

func only(ns ...backupv1alpha1.NamespaceName) *backupv1alpha1.ResourceSelection {
	return &backupv1alpha1.ResourceSelection{IncludedNamespaces: ns}
}

// The reconciler reads the inventory page, the cluster's Backups and the
// schedules listing it, and writes the verdicts on the BackupCluster.
func TestReportOnTheBackupCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const team = "team-pt"
	ensureNamespace(g, team)
	cluster(g, "pt-1")
	g.Eventually(func(g Gomega) {
		g.Expect(report(g, "pt-1").Reason).To(Equal(fleetv1alpha1.ReasonNoInventory))
	}, timeout, 100*time.Millisecond).Should(Succeed())

	writeInventory(g, "pt-1", "pt-1", "app", "db", "scratch")
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "app-and-db"},
		Spec:       fleetv1alpha1.BackupSpec{Cluster: "pt-1", BackupTemplate: fleetv1alpha1.BackupTemplate{Location: "primary", Selection: only("app", "db")}},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	b.Status.Phase, b.Status.Origin = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub
	b.Status.StartTime = &metav1.Time{Time: time.Now().Add(-30 * time.Minute)}
	g.Expect(hubClient.Status().Update(ctx, b)).To(Succeed())
	for name, cron := range map[string]string{"hourly": "0 * * * *", "every-minute": "* * * * *"} {
		g.Expect(hubClient.Create(ctx, &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: name},
			Spec: fleetv1alpha1.SchedulePolicySpec{Cron: cron}})).To(Succeed())
	}
	for name, spec := range map[string]struct {
		policy string
		ns     backupv1alpha1.NamespaceName
	}{"app": {"hourly", "app"}, "db": {"every-minute", "db"}} {
		s := &fleetv1alpha1.BackupSchedule{
			ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: name},
			Spec: fleetv1alpha1.BackupScheduleSpec{Policy: backupv1alpha1.ObjectName(spec.policy), ClusterSelector: &metav1.LabelSelector{},
				Template: fleetv1alpha1.BackupTemplate{Location: "primary", Selection: only(spec.ns)}},
		}
		g.Expect(hubClient.Create(ctx, s)).To(Succeed())
		s.Status.Clusters = []fleetv1alpha1.ScheduledCluster{{Cluster: "pt-1"}}
		g.Expect(hubClient.Status().Update(ctx, s)).To(Succeed())
	}

	g.Eventually(func(g Gomega) {
		r := report(g, "pt-1")
		g.Expect(r.Reason).To(BeEmpty())
		g.Expect([]int32{r.Namespaces, r.Protected, r.AtRisk, r.Unprotected}).To(Equal([]int32{3, 1, 1, 1}))
		g.Expect(r.NotProtected).To(HaveLen(2))
		g.Expect(r.NotProtected[0]).To(And(HaveField("Namespace", "db"), HaveField("Verdict", fleetv1alpha1.AtRisk),
			HaveField("Schedule", team+"/db"), HaveField("RPO", Equal(&metav1.Duration{Duration: 2 * time.Minute})),
			HaveField("LastSuccessfulBackup", team+"/app-and-db")))
		g.Expect(r.NotProtected[1]).To(And(HaveField("Namespace", "scratch"), HaveField("Verdict", fleetv1alpha1.Unprotected)))
	}, timeout, 100*time.Millisecond).Should(Succeed())

	t.Log("deleting the Backup leaves app AtRisk too")
	g.Expect(hubClient.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) []int32 {
		r := report(g, "pt-1")
		return []int32{r.Protected, r.AtRisk, r.Unprotected}
	}, timeout, 100*time.Millisecond).Should(Equal([]int32{0, 2, 1}))
}

// A page that speaks of another cluster than the namespace it is in gives
// that namespace's cluster no verdicts, and says why.
func TestForgedInventoryIsRejected(t *testing.T) {
	g := NewWithT(t)
	cluster(g, "pt-2")
	ensureNamespace(g, "pt-3")
	writeInventory(g, "pt-2", "pt-3", "app")
	g.Eventually(func(g Gomega) {
		r := report(g, "pt-2")
		g.Expect(r.Reason).To(Equal(fleetv1alpha1.ReasonInventoryRejected))
		g.Expect(r.Message).To(ContainSubstring(`the page in namespace pt-2 speaks of cluster "pt-3", not pt-2`))
		g.Expect(r.Namespaces).To(BeZero())
	}, timeout, 100*time.Millisecond).Should(Succeed())
}

// A cluster's report follows its inventory page as the spoke writes it,
// without waiting for the next InventoryPeriod (an hour here): the
// reconciler watches the pages' metadata.
func TestReportFollowsTheInventoryAtOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cluster(g, "pt-4")
	g.Eventually(func(g Gomega) {
		g.Expect(report(g, "pt-4").Reason).To(Equal(fleetv1alpha1.ReasonNoInventory))
	}, timeout, 100*time.Millisecond).Should(Succeed())

	writeInventory(g, "pt-4", "pt-4", "app")
	g.Eventually(func(g Gomega) []int32 {
		r := report(g, "pt-4")
		return []int32{r.Namespaces, r.Unprotected}
	}, timeout, 100*time.Millisecond).Should(Equal([]int32{1, 1}))

	page := &fleetv1alpha1.BackupCatalog{}
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Namespace: "pt-4", Name: fleetv1alpha1.InventoryPageName}, page)).To(Succeed())
	page.Spec.Inventory.Namespaces = append(page.Spec.Inventory.Namespaces, "db")
	page.Spec.Inventory.ObservedTime = metav1.Now()
	g.Expect(hubClient.Update(ctx, page)).To(Succeed())
	g.Eventually(func(g Gomega) []int32 {
		r := report(g, "pt-4")
		return []int32{r.Namespaces, r.Unprotected}
	}, timeout, 100*time.Millisecond).Should(Equal([]int32{2, 2}))
}
