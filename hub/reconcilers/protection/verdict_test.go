package protection

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupschedule"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func inventoryPage(cluster string, names ...string) *fleetv1alpha1.BackupCatalog {
	inv := &fleetv1alpha1.NamespaceInventory{ObservedTime: metav1.NewTime(now.Add(-time.Minute))}
	for _, n := range names {
		inv.Namespaces = append(inv.Namespaces, fleetv1alpha1.InventoryNamespaceName(n))
	}
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: fleetv1alpha1.InventoryPageName},
		Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(cluster), Inventory: inv},
	}
}

// The hub believes nothing a spoke writes: a page that speaks of another
// cluster, or breaks the bounds the CRD sets, gives no verdicts.
func TestCheckInventoryRejectsHostilePages(t *testing.T) {
	ref := &backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "s"}
	many := make([]string, fleetv1alpha1.MaxInventoryNamespaces+1)
	for i := range many {
		many[i] = fmt.Sprintf("ns-%d", i)
	}
	cases := []struct {
		name   string
		change func(*fleetv1alpha1.BackupCatalog)
		want   string
	}{
		{"speaks of another cluster", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Cluster = "spoke-2" }, `speaks of cluster "spoke-2", not spoke-1`},
		{"sits in another cluster's namespace", func(p *fleetv1alpha1.BackupCatalog) { p.Namespace = "spoke-2"; p.Spec.Cluster = "spoke-2" }, "in namespace spoke-2"},
		{"is not the inventory page", func(p *fleetv1alpha1.BackupCatalog) { p.Name = "other" }, `is not the inventory page "inventory"`},
		{"has no inventory", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Inventory = nil }, "has no inventory"},
		{"mixes in a sync's page", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Sync = ref }, "mixes an inventory with a sync's catalog"},
		{"lists too many namespaces", func(p *fleetv1alpha1.BackupCatalog) { *p = *inventoryPage("spoke-1", many...) }, "lists 5001 namespaces, more than 5000"},
		{"a name that is no namespace name", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Inventory.Namespaces[0] = "../etc" }, `lists "../etc", which is not a namespace name`},
		{"a name too long", func(p *fleetv1alpha1.BackupCatalog) {
			p.Spec.Inventory.Namespaces[0] = fleetv1alpha1.InventoryNamespaceName(strings.Repeat("a", 64))
		}, "which is not a namespace name"},
		{"a namespace twice", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Inventory.Namespaces[1] = "app" }, "lists namespace app twice"},
		{"negative omitted count", func(p *fleetv1alpha1.BackupCatalog) { p.Spec.Inventory.NamespacesOmitted = -1 }, "negative number"},
		{"observed in the future", func(p *fleetv1alpha1.BackupCatalog) {
			p.Spec.Inventory.ObservedTime = metav1.NewTime(now.Add(time.Hour))
		}, "missing or in the future"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			page := inventoryPage("spoke-1", "app", "db")
			tc.change(page)
			inv, err := CheckInventory(page, "spoke-1", now)
			g.Expect(inv).To(BeNil())
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
	g := NewWithT(t)
	inv, err := CheckInventory(inventoryPage("spoke-1", "app", "db"), "spoke-1", now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(inv.Namespaces).To(HaveLen(2))
}

func sel(included, excluded []backupv1alpha1.NamespaceName) *backupv1alpha1.ResourceSelection {
	return &backupv1alpha1.ResourceSelection{IncludedNamespaces: included, ExcludedNamespaces: excluded}
}

// A backup takes a namespace as the spoke would select it, and only when
// it takes the whole namespace.
func TestTakes(t *testing.T) {
	cases := []struct {
		name string
		sel  *backupv1alpha1.ResourceSelection
		want bool
	}{
		{"no selection takes everything", nil, true},
		{"included", sel([]backupv1alpha1.NamespaceName{"app"}, nil), true},
		{"not included", sel([]backupv1alpha1.NamespaceName{"db"}, nil), false},
		{"excluded from everything", sel(nil, []backupv1alpha1.NamespaceName{"app"}), false},
		{"everything but another", sel(nil, []backupv1alpha1.NamespaceName{"db"}), true},
		{"a label selector takes only part", &backupv1alpha1.ResourceSelection{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}, false},
		{"includedResources takes only part", &backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"configmaps"}}, false},
		{"excludedResources still counts", &backupv1alpha1.ResourceSelection{ExcludedResources: []backupv1alpha1.GroupResource{"events"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(Takes(tc.sel, "app")).To(Equal(tc.want))
		})
	}
}

func backupAt(cluster, name string, phase fleetv1alpha1.BackupPhase, origin fleetv1alpha1.BackupOrigin, start time.Time, s *backupv1alpha1.ResourceSelection) fleetv1alpha1.Backup {
	return fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
		Spec:       fleetv1alpha1.BackupSpec{Cluster: backupv1alpha1.ClusterName(cluster), BackupTemplate: fleetv1alpha1.BackupTemplate{Selection: s}},
		Status:     fleetv1alpha1.BackupStatus{Phase: phase, Origin: origin, BackupResult: backupv1alpha1.BackupResult{StartTime: &metav1.Time{Time: start}}},
	}
}

// Only restorable Backups of the cluster whose selection the hub knows count.
func TestBackupsCountOnlyKnownRestorableOnes(t *testing.T) {
	g := NewWithT(t)
	all := sel(nil, nil)
	list := []fleetv1alpha1.Backup{
		backupAt("spoke-1", "old", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub, now.Add(-2*time.Hour), all),
		backupAt("spoke-1", "new", fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.OriginSchedule, now.Add(-time.Hour), all),
		backupAt("spoke-1", "failed", fleetv1alpha1.BackupFailed, fleetv1alpha1.OriginHub, now, all),
		backupAt("spoke-2", "other-cluster", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub, now, all),
		backupAt("spoke-1", "synced-unknown-selection", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSynced, now, nil),
		backupAt("spoke-1", "self-service-without-namespace", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSelfService, now, nil),
		backupAt("spoke-1", "self-service", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSelfService, now.Add(-30*time.Minute), sel([]backupv1alpha1.NamespaceName{"db"}, nil)),
	}
	deleting := backupAt("spoke-1", "deleting", fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub, now, all)
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	list = append(list, deleting)
	var names []string
	for _, b := range Backups("spoke-1", list) {
		names = append(names, b.Name)
	}
	g.Expect(names).To(Equal([]string{"team-a/self-service", "team-a/new", "team-a/old"}))
}

// The RPO is the longest gap between runs plus the run's allowance.
func TestRPOFromCron(t *testing.T) {
	cases := []struct {
		cron    string
		timeout *metav1.Duration
		want    time.Duration
	}{
		{"* * * * *", nil, 2 * time.Minute},                                      // 1m + at least 1m
		{"0 2 * * *", nil, 24*time.Hour + time.Hour},                             // a tenth is 2h24m: at most 1h
		{"0 * * * *", nil, time.Hour + 6*time.Minute},                            // a tenth of an hour
		{"0 2 * * 1-5", nil, 72*time.Hour + time.Hour},                           // Friday to Monday
		{"0 2 * * *", &metav1.Duration{Duration: 3 * time.Hour}, 27 * time.Hour}, // the timeout instead
	}
	for _, tc := range cases {
		t.Run(tc.cron, func(t *testing.T) {
			g := NewWithT(t)
			plan, err := backupschedule.NewPlan(fleetv1alpha1.SchedulePolicySpec{Cron: tc.cron}, now.Add(-time.Hour))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(RPO(plan.LongestGap(now), tc.timeout)).To(Equal(tc.want))
		})
	}
	g := NewWithT(t)
	plan, err := backupschedule.NewPlan(fleetv1alpha1.SchedulePolicySpec{Interval: &metav1.Duration{Duration: 6 * time.Hour}}, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(plan.LongestGap(now)).To(Equal(6 * time.Hour))
}

// The three verdicts, the counts and the bounded list of namespaces that
// are not protected.
func TestEvaluate(t *testing.T) {
	g := NewWithT(t)
	inv := inventoryPage("spoke-1", "fresh", "stale", "never", "nobody", "one-off-only", "kube-system").Spec.Inventory
	only := func(ns ...backupv1alpha1.NamespaceName) *backupv1alpha1.ResourceSelection { return sel(ns, nil) }
	backups := []Backup{
		{Name: "team-a/fresh-1", Selection: only("fresh"), Start: now.Add(-30 * time.Minute)},
		{Name: "team-a/stale-1", Selection: only("stale"), Start: now.Add(-3 * time.Hour)},
		{Name: "team-a/one-off", Selection: only("one-off-only"), Start: now.Add(-time.Minute)},
	}
	covers := []Cover{
		{Name: "team-a/hourly", Selection: only("fresh", "stale", "never"), RPO: 66 * time.Minute},
		{Name: "team-a/daily", Selection: only("fresh"), RPO: 25 * time.Hour},
	}
	r, lapse := Evaluate(inv, backups, covers, now)
	g.Expect(r.Namespaces).To(BeEquivalentTo(6))
	g.Expect([]int32{r.Protected, r.AtRisk, r.Unprotected}).To(Equal([]int32{1, 2, 3}))
	g.Expect(lapse).To(Equal(now.Add(-30 * time.Minute).Add(66 * time.Minute))) // the hourly schedule's RPO, the shortest
	var got []string
	for _, p := range r.NotProtected {
		got = append(got, fmt.Sprintf("%s %s %s", p.Namespace, p.Verdict, p.Schedule))
	}
	g.Expect(got).To(Equal([]string{
		"never AtRisk team-a/hourly", "stale AtRisk team-a/hourly",
		"kube-system Unprotected ", "nobody Unprotected ", "one-off-only Unprotected ",
	}))
	g.Expect(r.NotProtected[1].LastSuccessfulBackup).To(Equal("team-a/stale-1"))
	g.Expect(r.NotProtected[0].LastSuccessfulTime).To(BeNil())
	g.Expect(r.NotProtected[4].LastSuccessfulBackup).To(Equal("team-a/one-off"))

	// Once the fresh backup is older than the RPO, the namespace is AtRisk.
	r, _ = Evaluate(inv, backups, covers, lapse.Add(time.Second))
	g.Expect(r.Protected).To(BeZero())
	g.Expect(r.AtRisk).To(BeEquivalentTo(3))
}

// However many namespaces a cluster has, the report names at most
// MaxProtectionNamespaces and counts them all.
func TestEvaluateIsBounded(t *testing.T) {
	g := NewWithT(t)
	var names []string
	for i := range fleetv1alpha1.MaxInventoryNamespaces {
		names = append(names, fmt.Sprintf("ns-%04d", i))
	}
	inv := inventoryPage("spoke-1", names...).Spec.Inventory
	inv.NamespacesOmitted = 7
	r, _ := Evaluate(inv, nil, nil, now)
	g.Expect(r.Unprotected).To(BeEquivalentTo(fleetv1alpha1.MaxInventoryNamespaces))
	g.Expect(r.NotProtected).To(HaveLen(fleetv1alpha1.MaxProtectionNamespaces))
	g.Expect(r.NamespacesOmitted).To(BeEquivalentTo(7))
}
