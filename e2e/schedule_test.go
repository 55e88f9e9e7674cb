package e2e

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupschedule"
)

// A BackupSchedule over a cluster selector (every minute, 20 s jitter,
// keepLast 2) backs up each selected cluster once per run, and the backups
// succeed; restarting lifeboat-hub in the middle of a run makes no
// duplicate; after four runs exactly the two latest backups of each cluster
// are left.
func TestScheduleOverClusters(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spokes := onboarded()
	const team, container, label = "team-schedule", "schedule-backups", "lifeboat.dev/schedule-e2e"
	const jitter = 20 * time.Second

	t.Log("the selector matches spoke-1 and spoke-2 through a label discovery copies from their Shoots")
	for _, s := range spokes {
		setShootLabels(g, ctx, s, map[string]string{label: "on"})
	}
	for _, s := range spokes {
		g.Eventually(func() map[string]string {
			bc, _ := testFleet.BackupCluster(ctx, s)
			return bc.Labels
		}, time.Minute, 250*time.Millisecond).Should(HaveKeyWithValue(label, "on"))
	}
	defer func() {
		for _, s := range spokes {
			setShootLabels(g, context.Background(), s, map[string]string{label: ""})
		}
	}()

	loc, _ := validTeamLocation(g, ctx, team, container, spokes...)

	ns := "shop-" + rand.String(4)
	for _, s := range spokes {
		ensureNamespace(g, ctx, s.Client, ns, nil)
		createConfigMaps(g, ctx, s.Client, ns, 20, 1<<10)
	}
	policy := &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "every-minute"},
		Spec: fleetv1alpha1.SchedulePolicySpec{
			Interval:  &metav1.Duration{Duration: time.Minute},
			Jitter:    &metav1.Duration{Duration: jitter},
			Retention: &fleetv1alpha1.Retention{KeepLast: 2},
		},
	}
	g.Expect(hub.Create(ctx, policy)).To(Succeed())
	sched := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "shop"},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          backupv1alpha1.ObjectName(policy.Name),
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "on"}},
			Template: fleetv1alpha1.BackupTemplate{
				Location:  backupv1alpha1.ObjectName(loc.Name),
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(ns)}},
			},
		},
	}
	g.Expect(hub.Create(ctx, sched)).To(Succeed())
	defer func() {
		_ = hub.Delete(context.Background(), sched)
	}()
	start := sched.CreationTimestamp.Time
	tick := func(k int) time.Time { return start.Add(time.Duration(k) * time.Minute) }
	for _, s := range spokes {
		t.Logf("%s runs %s into each run", s.Name, backupschedule.Offset(team, sched.Name, s.Name, jitter))
	}

	// Every Backup of the schedule ever seen, with the last phase seen.
	w := &watcher{seen: map[string]*fleetv1alpha1.Backup{}, success: map[string]bool{}}
	stop := w.poll(ctx, hub, sched)
	defer stop()

	t.Log("run 0 (at creation): one Backup per cluster, and both succeed")
	waitRun(g, w, 0, tick(0), spokes, true)

	t.Log("run 1: lifeboat-hub restarts once the first Backup of the run exists")
	g.Eventually(func() int { return len(w.ofTick(tick(1))) }, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", 1))
	before := len(w.ofTick(tick(1)))
	restarted := time.Now()
	g.Expect(testFleet.RestartHubManager(ctx)).To(Succeed())
	t.Logf("restarted lifeboat-hub %s into run 1 (%d of %d Backups made before), ready after %s",
		restarted.Sub(tick(1)).Round(time.Millisecond), before, len(spokes), time.Since(restarted).Round(time.Millisecond))
	waitRun(g, w, 1, tick(1), spokes, true)

	t.Log("runs 2 and 3; retention then keeps the two latest of each cluster")
	waitRun(g, w, 2, tick(2), spokes, true)
	waitRun(g, w, 3, tick(3), spokes, false)
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sched), sched)).To(Succeed())
	suspend := client.MergeFrom(sched.DeepCopy())
	sched.Spec.Suspend = true
	g.Expect(hub.Patch(ctx, sched, suspend)).To(Succeed(), "no more runs while retention settles")
	waitRun(g, w, 3, tick(3), spokes, true)
	var want []string
	for _, s := range spokes {
		want = append(want, backupschedule.BackupName(sched.Name, s.Name, tick(2)), backupschedule.BackupName(sched.Name, s.Name, tick(3)))
	}
	g.Eventually(func() []string {
		list := &fleetv1alpha1.BackupList{}
		g.Expect(hub.List(ctx, list, client.InNamespace(team), client.MatchingLabels{fleetv1alpha1.LabelSchedule: sched.Name})).To(Succeed())
		var names []string
		for _, b := range list.Items {
			names = append(names, b.Name)
		}
		return names
	}, 2*time.Minute, 250*time.Millisecond).Should(ConsistOf(want), "keepLast 2 per cluster: runs 2 and 3")

	t.Log("never a second Backup of one cluster for one run; every Backup succeeded")
	w.stop()
	byRun := map[string][]string{}
	for name, b := range w.all() {
		key := string(b.Spec.Cluster) + " " + b.Annotations[fleetv1alpha1.AnnotationScheduledTime]
		byRun[key] = append(byRun[key], name)
		g.Expect(w.succeeded(name)).To(BeTrue(), "Backup %s succeeded (last seen %s)", name, b.Status.Phase)
		g.Expect(b.Status.Origin).To(Equal(fleetv1alpha1.OriginSchedule), "Backup %s", name)
	}
	for key, names := range byRun {
		g.Expect(names).To(HaveLen(1), "Backups of %s", key)
	}
	g.Expect(byRun).To(HaveLen(4*len(spokes)), "runs 0-3 of each cluster, nothing more: %v", byRun)

	st := &fleetv1alpha1.BackupSchedule{}
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sched), st)).To(Succeed())
	g.Expect(st.Status.Phase).To(Equal(fleetv1alpha1.ScheduleSuspended))
	g.Expect(st.Status.Clusters).To(HaveLen(len(spokes)))
	for _, c := range st.Status.Clusters {
		g.Expect(c.LastBackup).To(Equal(backupschedule.BackupName(sched.Name, c.Cluster, tick(3))))
		g.Expect(c.LastPhase).To(Equal(fleetv1alpha1.BackupSuccess))
		g.Expect(c.LastSuccessfulTime).NotTo(BeNil())
	}
	t.Logf("status: %+v; Ready: %+v", st.Status.Clusters, meta.FindStatusCondition(st.Status.Conditions, fleetv1alpha1.ConditionReady))
}

// waitRun waits until run k has exactly one Backup per spoke and, with
// succeed, until they all succeeded.
func waitRun(g Gomega, w *watcher, k int, at time.Time, spokes []*fleet.Spoke, succeed bool) {
	g.Eventually(func() []string {
		var clusters []string
		for _, b := range w.ofTick(at) {
			clusters = append(clusters, string(b.Spec.Cluster))
		}
		sort.Strings(clusters)
		return clusters
	}, 2*time.Minute, 100*time.Millisecond).Should(Equal(spokeNames(spokes)), "run %d at %s", k, at.UTC().Format(time.RFC3339))
	if !succeed {
		return
	}
	g.Eventually(func() map[string]fleetv1alpha1.BackupPhase {
		phases := map[string]fleetv1alpha1.BackupPhase{}
		for _, b := range w.ofTick(at) {
			phases[b.Name] = b.Status.Phase
			if w.succeeded(b.Name) {
				phases[b.Name] = fleetv1alpha1.BackupSuccess
			}
		}
		return phases
	}, 2*time.Minute, 100*time.Millisecond).Should(And(HaveLen(len(spokes)), HaveEach(fleetv1alpha1.BackupSuccess)), "run %d", k)
}

func spokeNames(spokes []*fleet.Spoke) []string {
	var out []string
	for _, s := range spokes {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// watcher keeps every Backup of a schedule it has seen, as last seen.
type watcher struct {
	mu   sync.Mutex
	seen map[string]*fleetv1alpha1.Backup
	// success are the Backups seen in phase Success (a deleted one ends
	// in another phase).
	success map[string]bool
	stop    func()
}

func (w *watcher) succeeded(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.success[name]
}

func (w *watcher) poll(ctx context.Context, c client.Client, s *fleetv1alpha1.BackupSchedule) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &fleetv1alpha1.BackupList{}
			if c.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{fleetv1alpha1.LabelSchedule: s.Name}) == nil {
				w.mu.Lock()
				for i := range list.Items {
					w.seen[list.Items[i].Name] = list.Items[i].DeepCopy()
					if list.Items[i].Status.Phase == fleetv1alpha1.BackupSuccess {
						w.success[list.Items[i].Name] = true
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	w.stop = func() { cancel(); <-done }
	return w.stop
}

func (w *watcher) all() map[string]*fleetv1alpha1.Backup {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]*fleetv1alpha1.Backup, len(w.seen))
	for k, v := range w.seen {
		out[k] = v
	}
	return out
}

// ofTick are the Backups seen for the run at tick.
func (w *watcher) ofTick(tick time.Time) []*fleetv1alpha1.Backup {
	want := tick.UTC().Format(time.RFC3339)
	var out []*fleetv1alpha1.Backup
	for _, b := range w.all() {
		if b.Annotations[fleetv1alpha1.AnnotationScheduledTime] == want {
			out = append(out, b)
		}
	}
	return out
}

// setShootLabels sets (or, with "", removes) labels on s's Shoot.
func setShootLabels(g Gomega, ctx context.Context, s *fleet.Spoke, labels map[string]string) {
	shoot := &gardencorev1beta1.Shoot{}
	g.Expect(testFleet.Garden.Client.Get(ctx, client.ObjectKey{Namespace: fleet.ProjectNamespace(fleet.GardenProject), Name: s.Shoot}, shoot)).To(Succeed())
	patch := client.MergeFrom(shoot.DeepCopy())
	for k, v := range labels {
		if v == "" {
			delete(shoot.Labels, k)
		} else {
			shoot.Labels[k] = v
		}
	}
	g.Expect(testFleet.Garden.Client.Patch(ctx, shoot, patch)).To(Succeed())
}
