package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// Each spoke reports its namespaces to the hub through the catalog channel,
// and each BackupCluster's protection report judges them: on both spokes a
// namespace nobody backs up is Unprotected; once backed up, a namespace
// covered by an hourly schedule is Protected, and one covered by a
// suspended every-minute schedule is AtRisk as soon as its backup is older
// than that schedule's RPO (1 minute between runs plus 1 minute's
// allowance). The metrics say the same.
func TestProtectionReport(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub, spokes := testFleet.Hub.Client, onboarded()
	const team = "team-protection"
	suffix := rand.String(4)
	fresh, stale, nobody := "prot-fresh-"+suffix, "prot-stale-"+suffix, "prot-nobody-"+suffix

	loc, _ := validTeamLocation(g, ctx, team, "protection", spokes...)
	for _, s := range spokes {
		for _, ns := range []string{fresh, stale, nobody} {
			ensureNamespace(g, ctx, s.Client, ns, nil)
		}
		createConfigMaps(g, ctx, s.Client, fresh, 3, 64)
		createConfigMaps(g, ctx, s.Client, stale, 3, 64)
	}

	t.Log("the spokes report the new namespaces; nothing covers them: Unprotected")
	for _, s := range spokes {
		g.Eventually(func(g Gomega) {
			p := protectionOf(g, ctx, s)
			for _, ns := range []string{fresh, stale, nobody} {
				g.Expect(p.NotProtected).To(ContainElement(And(
					HaveField("Namespace", ns), HaveField("Verdict", fleetv1alpha1.Unprotected), HaveField("Schedule", ""))))
			}
		}, 3*time.Minute, time.Second).Should(Succeed())
	}

	t.Log("one backup per spoke takes both backed-up namespaces")
	var backups []*fleetv1alpha1.Backup
	for _, s := range spokes {
		b := hubBackup(team, "both-"+s.Name, s, loc.Name, fresh)
		b.Spec.Selection.IncludedNamespaces = append(b.Spec.Selection.IncludedNamespaces, backupv1alpha1.NamespaceName(stale))
		g.Expect(hub.Create(ctx, b)).To(Succeed())
		defer func() { _ = hub.Delete(context.Background(), b) }()
		backups = append(backups, b)
	}
	for _, b := range backups {
		phase := waitFinished(g, ctx, hub, b, func(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }, 3*time.Minute)
		g.Expect(phase).To(Equal(string(fleetv1alpha1.BackupSuccess)))
	}

	t.Log("an hourly schedule covers the fresh namespace; a suspended every-minute one the stale namespace")
	for _, p := range []*fleetv1alpha1.SchedulePolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "hourly"}, Spec: fleetv1alpha1.SchedulePolicySpec{Cron: "0 * * * *"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "every-minute"}, Spec: fleetv1alpha1.SchedulePolicySpec{Cron: "* * * * *"}},
	} {
		g.Expect(hub.Create(ctx, p)).To(Succeed())
		defer func() { _ = hub.Delete(context.Background(), p) }()
	}
	schedule := func(name, policy, ns string, suspend bool) *fleetv1alpha1.BackupSchedule {
		return &fleetv1alpha1.BackupSchedule{
			ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: name},
			Spec: fleetv1alpha1.BackupScheduleSpec{
				Policy:          backupv1alpha1.ObjectName(policy),
				ClusterSelector: &metav1.LabelSelector{},
				Suspend:         suspend,
				Template: fleetv1alpha1.BackupTemplate{
					Location:  backupv1alpha1.ObjectName(loc.Name),
					Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(ns)}},
				},
			},
		}
	}
	for _, s := range []*fleetv1alpha1.BackupSchedule{schedule("fresh", "hourly", fresh, false), schedule("stale", "every-minute", stale, true)} {
		g.Expect(hub.Create(ctx, s)).To(Succeed())
		defer func() { _ = hub.Delete(context.Background(), s) }()
	}

	for i, s := range spokes {
		b := backups[i]
		g.Eventually(func(g Gomega) {
			p := protectionOf(g, ctx, s)
			g.Expect(p.NotProtected).NotTo(ContainElement(HaveField("Namespace", fresh)), "%s: the fresh namespace is Protected", s.Name)
			g.Expect(p.Protected).To(BeNumerically(">=", 1))
			g.Expect(p.NotProtected).To(ContainElement(And(
				HaveField("Namespace", stale), HaveField("Verdict", fleetv1alpha1.AtRisk),
				HaveField("Schedule", team+"/stale"), HaveField("RPO", Equal(&metav1.Duration{Duration: 2 * time.Minute})),
				HaveField("LastSuccessfulBackup", team+"/"+b.Name))), "%s: the stale namespace's backup is older than 2m", s.Name)
			g.Expect(p.NotProtected).To(ContainElement(And(HaveField("Namespace", nobody), HaveField("Verdict", fleetv1alpha1.Unprotected))))
		}, 4*time.Minute, 2*time.Second).Should(Succeed())
		p := protectionOf(g, ctx, s)
		t.Logf("%s: %d namespaces, %d Protected, %d AtRisk, %d Unprotected; %s AtRisk %s after its backup started",
			s.Name, p.Namespaces, p.Protected, p.AtRisk, p.Unprotected, stale, time.Since(b.Status.StartTime.Time).Round(time.Second))
	}

	t.Log("the metrics count the verdicts per cluster")
	scraper := metricsScraper(g, ctx, "lifeboat-metrics-scraper", true)
	g.Eventually(func(g Gomega) {
		resp := scrape(g, scraper)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		for _, s := range spokes {
			p := protectionOf(g, ctx, s)
			for verdict, n := range map[fleetv1alpha1.ProtectionVerdict]int32{fleetv1alpha1.Protected: p.Protected, fleetv1alpha1.AtRisk: p.AtRisk, fleetv1alpha1.Unprotected: p.Unprotected} {
				g.Expect(series(families, "lifeboat_protection_namespaces", map[string]string{"cluster": s.Name, "verdict": string(verdict)})).
					To(ConsistOf(float64(n)), "%s %s", s.Name, verdict)
			}
			g.Expect(families).To(HaveKey("lifeboat_protection_inventory_timestamp_seconds"))
			g.Expect(series(families, "lifeboat_protection_inventory_timestamp_seconds", map[string]string{"cluster": s.Name})).To(HaveLen(1))
		}
	}, time.Minute, 2*time.Second).Should(Succeed())
}

// protectionOf is spoke s's protection report; it fails while there is none
// with verdicts.
func protectionOf(g Gomega, ctx context.Context, s *fleet.Spoke) *fleetv1alpha1.ProtectionReport {
	bc, err := testFleet.BackupCluster(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bc.Status.Protection).NotTo(BeNil(), "%s has no protection report", s.Name)
	g.Expect(bc.Status.Protection.Reason).To(BeEmpty(), "%s: %s", s.Name, bc.Status.Protection.Message)
	return bc.Status.Protection
}
