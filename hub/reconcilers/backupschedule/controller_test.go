package backupschedule

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

const timeout = 15 * time.Second

// A schedule over a selector makes one Backup per allowed cluster at each
// run, at the cluster's place in the jitter window, keeps what retention
// says, catches up a long downtime with one run, and backs up a cluster
// selected later from the next run on.
func TestScheduleRunsRetainsAndCatchesUp(t *testing.T) {
	g := NewWithT(t)
	const ns = "team-runs"
	a, b, c := "runs-a", "runs-b", "runs-c"
	for _, n := range []string{a, b, c} {
		newCluster(t, g, n, map[string]string{"tier": "runs"})
	}
	newCluster(t, g, "runs-other", map[string]string{"tier": "other"})
	loc := newLocation(t, g, ns, "primary", a, b) // not c
	newPolicy(t, g, ns, "hourly", fleetv1alpha1.SchedulePolicySpec{
		Interval: dur(time.Hour), Jitter: dur(10 * time.Minute), Retention: &fleetv1alpha1.Retention{KeepLast: 2},
	})
	s := newSchedule(t, g, ns, "runs", "hourly", "tier", "runs")
	start := s.CreationTimestamp.Time
	tick := func(h int) time.Time { return start.Add(time.Duration(h) * time.Hour) }

	t.Log("at creation, before any cluster's offset: nothing yet, each cluster's next run is its offset")
	setClock(start)
	poke(g, s)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", HaveLen(3)))
	st := scheduleStatus(s)()
	for _, cl := range st.Clusters {
		if cl.Cluster == c {
			g.Expect(cl.NextRunTime).To(BeNil(), "the location does not allow %s", c)
			continue
		}
		g.Expect(cl.NextRunTime).NotTo(BeNil())
		g.Expect(cl.NextRunTime.Time).To(BeTemporally("==", start.Add(Offset(ns, s.Name, cl.Cluster, 10*time.Minute)).Truncate(time.Second)))
	}
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed)))
	g.Expect(ready.Message).To(And(ContainSubstring(c), ContainSubstring(`"primary"`), ContainSubstring("1 of the 3")))
	g.Expect(st.Phase).To(Equal(fleetv1alpha1.ScheduleActive))
	g.Expect(backupsOf(g, s)).To(BeEmpty())

	t.Log("after the jitter window: one Backup per allowed cluster, named, labelled and annotated for the run")
	setClock(tick(0).Add(10 * time.Minute))
	poke(g, s)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BackupName(s.Name, a, tick(0)), BackupName(s.Name, b, tick(0))))
	for _, bk := range backupsOf(g, s) {
		g.Expect(bk.Labels).To(And(HaveKeyWithValue(fleetv1alpha1.LabelSchedule, s.Name), HaveKeyWithValue(fleetv1alpha1.LabelCluster, string(bk.Spec.Cluster))))
		g.Expect(bk.Annotations).To(HaveKeyWithValue(fleetv1alpha1.AnnotationScheduledTime, tick(0).UTC().Format(time.RFC3339)))
		g.Expect(bk.Spec.Location).To(BeEquivalentTo(loc.Name))
		g.Expect(bk.Spec.Selection.IncludedNamespaces).To(ConsistOf(backupv1alpha1.NamespaceName("shop")))
	}
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ContainElement(And(
		HaveField("Cluster", a), HaveField("LastBackup", BackupName(s.Name, a, tick(0))), HaveField("LastPhase", fleetv1alpha1.BackupPending)))))
	st = scheduleStatus(s)()
	g.Expect(st.LastScheduleTime.Time).To(BeTemporally("==", tick(0).Truncate(time.Second)))
	g.Expect(st.NextScheduleTime.Time).To(BeTemporally("==", tick(1).Truncate(time.Second)))

	g.Eventually(eventstest.Notes(hubClient, s, "ScheduleRun")).WithTimeout(timeout).Should(ConsistOf("Created 2 Backups, on clusters runs-a, runs-b"))

	t.Log("looking again in the same run makes nothing new")
	poke(g, s)
	g.Consistently(func() int { return len(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(Equal(2))

	t.Log("runs 1 and 2 succeed; retention (keepLast 2) then deletes run 0")
	succeed(g, backupsOf(g, s)...)
	for h := 1; h <= 2; h++ {
		setClock(tick(h).Add(10 * time.Minute))
		poke(g, s)
		g.Eventually(func() []time.Time { return ticksOf(backupsOf(g, s)) }).WithTimeout(timeout).Should(ContainElement(BeTemporally("==", tick(h).Truncate(time.Second))))
		succeed(g, backupsOf(g, s)...)
	}
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BackupName(s.Name, a, tick(1)), BackupName(s.Name, b, tick(1)), BackupName(s.Name, a, tick(2)), BackupName(s.Name, b, tick(2))))
	g.Eventually(func() string { return strings.Join(eventstest.Notes(hubClient, s, "RetentionDeleted")(), "\n") }).WithTimeout(timeout).Should(And(
		HavePrefix("Deleted "), ContainSubstring("that retention does not keep: "),
		ContainSubstring(BackupName(s.Name, a, tick(0))), ContainSubstring(BackupName(s.Name, b, tick(0)))))
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ContainElement(And(
		HaveField("Cluster", b), HaveField("LastPhase", fleetv1alpha1.BackupSuccess),
		HaveField("LastSuccessfulTime", HaveField("Time", BeTemporally("==", tick(2).Add(Offset(ns, s.Name, b, 10*time.Minute)).Truncate(time.Second))))))))

	t.Log("a running backup is not deleted, and does not count")
	setClock(tick(3).Add(10 * time.Minute))
	poke(g, s)
	g.Eventually(func() int { return len(backupsOf(g, s)) }).WithTimeout(timeout).Should(Equal(6))
	setPhase(g, fleetv1alpha1.BackupInProgress, backupsOf(g, s)...)
	g.Consistently(func() int { return len(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(Equal(6))
	succeed(g, backupsOf(g, s)...)
	g.Eventually(func() []time.Time { return ticksOf(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BeTemporally("==", tick(2).Truncate(time.Second)), BeTemporally("==", tick(2).Truncate(time.Second)),
		BeTemporally("==", tick(3).Truncate(time.Second)), BeTemporally("==", tick(3).Truncate(time.Second))))

	t.Log("the hub was down for runs 4 to 8: one Backup per cluster, for run 8")
	setClock(tick(8).Add(10 * time.Minute))
	poke(g, s)
	g.Eventually(func() int { return len(backupsOf(g, s)) }).WithTimeout(timeout).Should(Equal(6))
	g.Consistently(func() int { return len(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(Equal(6))
	g.Expect(ticksOf(backupsOf(g, s))).To(HaveEach(Or(
		BeTemporally("==", tick(2).Truncate(time.Second)), BeTemporally("==", tick(3).Truncate(time.Second)), BeTemporally("==", tick(8).Truncate(time.Second)))))
	succeed(g, backupsOf(g, s)...)

	t.Log("a cluster onboarded during run 8 is backed up from run 9 on")
	setClock(tick(8).Add(30 * time.Minute))
	late := "runs-late"
	newCluster(t, g, late, map[string]string{"tier": "runs"})
	setConnections(g, loc, a, b, late)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ContainElement(And(
		HaveField("Cluster", late),
		HaveField("NextRunTime", HaveField("Time", BeTemporally("==", tick(9).Add(Offset(ns, s.Name, late, 10*time.Minute)).Truncate(time.Second))))))))
	g.Consistently(func() []string { return clustersOf(backupsOf(g, s)) }).WithTimeout(2 * time.Second).ShouldNot(ContainElement(late))
	setClock(tick(9).Add(10 * time.Minute))
	poke(g, s)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ContainElement(BackupName(s.Name, late, tick(9))))
}

// A schedule without its policy says so; with it, it runs. A Backup that a
// hub made before it restarted is not made twice; a suspended schedule makes
// no Backups and, resumed, catches up with one run.
func TestScheduleWaitsForPolicySuspendsAndNeverDuplicates(t *testing.T) {
	g := NewWithT(t)
	const ns = "team-suspend"
	a := "suspend-a"
	newCluster(t, g, a, map[string]string{"tier": "suspend"})
	newLocation(t, g, ns, "primary", a)
	s := newSchedule(t, g, ns, "daily", "later", "tier", "suspend")
	start := s.CreationTimestamp.Time
	setClock(start)
	poke(g, s)

	t.Log("the policy is missing")
	g.Eventually(readyOf(s)).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonPolicyNotFound)))
	g.Expect(readyOf(s)().Message).To(ContainSubstring(`SchedulePolicy "later" does not exist in namespace team-suspend`))
	g.Expect(backupsOf(g, s)).To(BeEmpty())

	t.Log("a Backup of the first run exists already, as if a hub made it and restarted before writing the status")
	existing := newBackup(s, a, start)
	g.Expect(hubClient.Create(context.Background(), existing)).To(Succeed())

	newPolicy(t, g, ns, "later", fleetv1alpha1.SchedulePolicySpec{Interval: dur(24 * time.Hour)})
	g.Eventually(readyOf(s)).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonScheduled))
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(HaveField("LastBackup", existing.Name))))
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(existing.Name))

	t.Log("suspended: no Backups at the next runs")
	patchSchedule(g, s, func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Suspend = true })
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(And(HaveField("Phase", fleetv1alpha1.ScheduleSuspended), HaveField("NextScheduleTime", BeNil())))
	g.Expect(readyOf(s)()).To(HaveField("Reason", fleetv1alpha1.ReasonSuspended))
	setClock(start.Add(72*time.Hour + time.Minute))
	poke(g, s)
	g.Consistently(func() int { return len(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(Equal(1))

	t.Log("resumed: one Backup, for the latest run")
	patchSchedule(g, s, func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Suspend = false })
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(existing.Name, BackupName(s.Name, a, start.Add(72*time.Hour))))
	g.Consistently(func() int { return len(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(Equal(2))
	g.Expect(scheduleStatus(s)()).To(HaveField("Phase", fleetv1alpha1.ScheduleActive))
}

func TestPolicyStatus(t *testing.T) {
	g := NewWithT(t)
	const ns = "team-policy"
	good := newPolicy(t, g, ns, "nightly", fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *", TimeZone: "Europe/Berlin", Jitter: dur(30 * time.Minute)})
	bad := newPolicy(t, g, ns, "never", fleetv1alpha1.SchedulePolicySpec{Cron: "0 0 31 2 *"})
	get := func(p *fleetv1alpha1.SchedulePolicy) func() fleetv1alpha1.SchedulePolicyStatus {
		return func() fleetv1alpha1.SchedulePolicyStatus {
			out := &fleetv1alpha1.SchedulePolicy{}
			g.Expect(hubClient.Get(context.Background(), client.ObjectKeyFromObject(p), out)).To(Succeed())
			return out.Status
		}
	}
	g.Eventually(get(good)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ConfigReady))
	g.Expect(meta.FindStatusCondition(get(good)().Conditions, fleetv1alpha1.ConditionReady).Message).To(ContainSubstring(`runs at "0 2 * * *" in Europe/Berlin, spread over 30m0s`))
	g.Eventually(get(bad)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ConfigInvalid))
	c := meta.FindStatusCondition(get(bad)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(c).To(And(HaveField("Reason", fleetv1alpha1.ReasonInvalidSchedule), HaveField("Message", ContainSubstring("never runs"))))

	t.Log("a schedule on the invalid policy says why it makes no backups")
	s := newSchedule(t, g, ns, "broken", "never", "tier", "none")
	g.Eventually(readyOf(s)).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonInvalidSchedule)))
	g.Expect(readyOf(s)().Message).To(ContainSubstring(`SchedulePolicy "never" cannot be used: cron "0 0 31 2 *" never runs`))

	t.Log("the API refuses an interval under a minute")
	err := hubClient.Create(context.Background(), &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-fast"},
		Spec:       fleetv1alpha1.SchedulePolicySpec{Interval: dur(30 * time.Second), Retention: &fleetv1alpha1.Retention{KeepLast: 1}},
	})
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
}

func setClock(t time.Time) { testClock.SetTime(t) }

func createNamespace(g *WithT, name string) {
	if err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
}

func newCluster(t *testing.T, g *WithT, name string, labels map[string]string) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
	g.Expect(hubClient.Create(ctx, bc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, bc) })
}

func newLocation(t *testing.T, g *WithT, ns, name string, clusters ...string) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	createNamespace(g, ns)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct1", Container: "backups", Prefix: ns, Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "any"}},
		},
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	setConnections(g, loc, clusters...)
	return loc
}

// setConnections writes the location's status as the location reconciler
// would, and its clusters' works as their agents would: Valid on clusters,
// no others selected.
func setConnections(g *WithT, loc *fleetv1alpha1.BackupLocation, clusters ...string) {
	ctx := context.Background()
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	now := metav1.Now()
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.Phase = fleetv1alpha1.LocationValid
	loc.Status.SelectedClusters, loc.Status.ValidClusters = int32(len(clusters)), int32(len(clusters))
	var conns []fleetv1alpha1.ClusterConnection
	for _, c := range clusters {
		conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: c, ValidationState: backupv1alpha1.ValidationState{
			Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", LastValidationTime: &now}})
	}
	g.Expect(locationstest.SetConnections(ctx, hubClient, loc, conns...)).To(Succeed())
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
}

func newPolicy(t *testing.T, g *WithT, ns, name string, spec fleetv1alpha1.SchedulePolicySpec) *fleetv1alpha1.SchedulePolicy {
	ctx := context.Background()
	createNamespace(g, ns)
	if spec.Retention == nil {
		spec.Retention = &fleetv1alpha1.Retention{KeepLast: 10}
	}
	p := &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	g.Expect(hubClient.Create(ctx, p)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, p) })
	return p
}

func newSchedule(t *testing.T, g *WithT, ns, name, policy, key, value string, mutate ...func(*fleetv1alpha1.BackupScheduleSpec)) *fleetv1alpha1.BackupSchedule {
	ctx := context.Background()
	createNamespace(g, ns)
	s := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          backupv1alpha1.ObjectName(policy),
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
			Template: fleetv1alpha1.BackupTemplate{
				Location:  "primary",
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop"}},
			},
		},
	}
	for _, m := range mutate {
		m(&s.Spec)
	}
	g.Expect(hubClient.Create(ctx, s)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, s) })
	return s
}

// poke changes an annotation, which makes the reconciler look at the
// schedule at once, as it would when a run is due by the real clock.
func poke(g *WithT, s *fleetv1alpha1.BackupSchedule) {
	patchSchedule(g, s, func(s *fleetv1alpha1.BackupSchedule) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations["test.lifeboat.dev/poke"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	})
}

func patchSchedule(g *WithT, s *fleetv1alpha1.BackupSchedule, mutate func(*fleetv1alpha1.BackupSchedule)) {
	ctx := context.Background()
	cur := &fleetv1alpha1.BackupSchedule{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(s), cur)).To(Succeed())
	before := cur.DeepCopy()
	mutate(cur)
	g.Expect(hubClient.Patch(ctx, cur, client.MergeFrom(before))).To(Succeed())
}

func scheduleStatus(s *fleetv1alpha1.BackupSchedule) func() fleetv1alpha1.BackupScheduleStatus {
	return func() fleetv1alpha1.BackupScheduleStatus {
		out := &fleetv1alpha1.BackupSchedule{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(s), out); err != nil {
			return fleetv1alpha1.BackupScheduleStatus{}
		}
		return out.Status
	}
}

func readyOf(s *fleetv1alpha1.BackupSchedule) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(scheduleStatus(s)().Conditions, fleetv1alpha1.ConditionReady)
	}
}

func backupsOf(g *WithT, s *fleetv1alpha1.BackupSchedule) []fleetv1alpha1.Backup {
	list := &fleetv1alpha1.BackupList{}
	g.Expect(hubClient.List(context.Background(), list, client.InNamespace(s.Namespace), client.MatchingLabels{fleetv1alpha1.LabelSchedule: s.Name})).To(Succeed())
	return list.Items
}

func names(bs []fleetv1alpha1.Backup) []string {
	out := make([]string, len(bs))
	for i := range bs {
		out[i] = bs[i].Name
	}
	sort.Strings(out)
	return out
}

func clustersOf(bs []fleetv1alpha1.Backup) []string {
	out := make([]string, len(bs))
	for i := range bs {
		out[i] = string(bs[i].Spec.Cluster)
	}
	return out
}

func ticksOf(bs []fleetv1alpha1.Backup) []time.Time {
	out := make([]time.Time, len(bs))
	for i := range bs {
		out[i] = tickOf(&bs[i])
	}
	return out
}

func succeed(g *WithT, bs ...fleetv1alpha1.Backup) {
	setPhase(g, fleetv1alpha1.BackupSuccess, bs...)
}

// setPhase writes the phase the backup reconciler would mirror from the spoke.
func setPhase(g *WithT, phase fleetv1alpha1.BackupPhase, bs ...fleetv1alpha1.Backup) {
	for i := range bs {
		b := &bs[i]
		if finished := b.Status.Phase == fleetv1alpha1.BackupSuccess; finished && phase != fleetv1alpha1.BackupSuccess {
			continue
		}
		before := b.DeepCopy()
		b.Status.Phase = phase
		g.Expect(client.IgnoreNotFound(hubClient.Status().Patch(context.Background(), b, client.MergeFrom(before)))).To(Succeed())
	}
}
