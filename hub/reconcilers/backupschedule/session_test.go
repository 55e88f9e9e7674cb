package backupschedule

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
)

// hourly makes an hourly policy without jitter in ns.
func hourly(t *testing.T, g *WithT, ns string) {
	newPolicy(t, g, ns, "hourly", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)})
}

// runsOf is the time of run h of schedule s.
func runsOf(s *fleetv1alpha1.BackupSchedule) func(h int) time.Time {
	return func(h int) time.Time { return s.CreationTimestamp.Add(time.Duration(h) * time.Hour) }
}

// runAt moves the clock to minutes past run h and pokes the schedule.
func runAt(g *WithT, s *fleetv1alpha1.BackupSchedule, tick func(int) time.Time, h int, minutes time.Duration) {
	setClock(tick(h).Add(minutes * time.Minute))
	poke(g, s)
}

// Forbid skips a run for a cluster whose Backup of an earlier run still
// runs, for good; Replace deletes the running one and creates the new one.
func TestConcurrencyForbidSkipsAndReplaceReplaces(t *testing.T) {
	g := NewWithT(t)
	const ns, c = "team-concurrency", "conc-a"
	newCluster(t, g, c, map[string]string{"tier": "conc"})
	newLocation(t, g, ns, "primary", c)
	hourly(t, g, ns)
	setClock(time.Now()) // not where an earlier test left it, which would make a run at creation
	s := newSchedule(t, g, ns, "conc", "hourly", "tier", "conc", func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.ConcurrencyPolicy = fleetv1alpha1.ConcurrencyForbid
	})
	tick := runsOf(s)

	runAt(g, s, tick, 0, 1)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	setPhase(g, fleetv1alpha1.BackupInProgress, backupsOf(g, s)...)

	t.Log("Forbid: run 1 is skipped while run 0 still runs")
	runAt(g, s, tick, 1, 1)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(
		HaveField("LastSkippedTime", HaveField("Time", BeTemporally("==", tick(1).Truncate(time.Second)))))))
	g.Expect(names(backupsOf(g, s))).To(ConsistOf(BackupName(s.Name, c, tick(0))))
	g.Expect(eventstest.Notes(hubClient, s, "RunSkipped")()).To(ConsistOf(And(
		ContainSubstring("Skipped the run of "+tick(1).UTC().Format(time.RFC3339)), ContainSubstring(c+" ("+BackupName(s.Name, c, tick(0))+")"),
		ContainSubstring("concurrencyPolicy Forbid"))))

	t.Log("run 0 ends: the skipped run stays skipped")
	succeed(g, backupsOf(g, s)...)
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(BackupName(s.Name, c, tick(0))))

	t.Log("run 2 is made: nothing runs")
	runAt(g, s, tick, 2, 1)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BackupName(s.Name, c, tick(0)), BackupName(s.Name, c, tick(2))))

	t.Log("Replace: the running Backup of run 2 is deleted and run 3's made")
	patchSchedule(g, s, func(s *fleetv1alpha1.BackupSchedule) { s.Spec.ConcurrencyPolicy = fleetv1alpha1.ConcurrencyReplace })
	for _, b := range backupsOf(g, s) {
		if b.Name == BackupName(s.Name, c, tick(2)) {
			setPhase(g, fleetv1alpha1.BackupInProgress, b)
		}
	}
	runAt(g, s, tick, 3, 1)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BackupName(s.Name, c, tick(0)), BackupName(s.Name, c, tick(3))))
	g.Eventually(eventstest.Notes(hubClient, s, "RunReplaced")).WithTimeout(timeout).Should(ConsistOf(And(
		ContainSubstring("Replaced 1 Backup still running with the run of "+tick(3).UTC().Format(time.RFC3339)),
		ContainSubstring(BackupName(s.Name, c, tick(2))))))
}

// A run due longer ago than startingDeadline is skipped, not made late; the
// next one is made on time.
func TestStartingDeadlineSkipsALateRun(t *testing.T) {
	g := NewWithT(t)
	const ns, c = "team-deadline", "deadline-a"
	newCluster(t, g, c, map[string]string{"tier": "deadline"})
	newLocation(t, g, ns, "primary", c)
	hourly(t, g, ns)
	setClock(time.Now()) // not where an earlier test left it, which would make a run at creation
	s := newSchedule(t, g, ns, "deadline", "hourly", "tier", "deadline", func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.StartingDeadline = dur(10 * time.Minute)
	})
	tick := runsOf(s)

	runAt(g, s, tick, 0, 5)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	succeed(g, backupsOf(g, s)...)

	t.Log("the hub was down for runs 1 to 3 and looks again 30m after run 3: skipped")
	runAt(g, s, tick, 3, 30)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(
		HaveField("LastSkippedTime", HaveField("Time", BeTemporally("==", tick(3).Truncate(time.Second)))))))
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	g.Expect(eventstest.Notes(hubClient, s, "RunSkipped")()).To(ConsistOf(
		ContainSubstring("it was due more than its startingDeadline of 10m0s ago")))

	t.Log("run 4, looked at within the deadline, is made")
	runAt(g, s, tick, 4, 9)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(
		BackupName(s.Name, c, tick(0)), BackupName(s.Name, c, tick(4))))
}

// The history limits keep exactly the newest successfulHistoryLimit
// successful and failedHistoryLimit failed Backups per cluster (here without
// retention, which would keep them all); running Backups are not counted.
func TestHistoryLimitsKeepWhatTheySay(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const ns, c = "team-history", "history-a"
	newCluster(t, g, c, map[string]string{"tier": "history"})
	newLocation(t, g, ns, "primary", c)
	pol := &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
		Spec: fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)}}
	g.Expect(hubClient.Create(ctx, pol)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, pol) })
	setClock(time.Now()) // not where an earlier test left it, which would make a run at creation
	s := newSchedule(t, g, ns, "history", "hourly", "tier", "history", func(s *fleetv1alpha1.BackupScheduleSpec) {
		two, one := int32(2), int32(1)
		s.SuccessfulHistoryLimit, s.FailedHistoryLimit = &two, &one
	})
	tick := runsOf(s)
	phases := []fleetv1alpha1.BackupPhase{fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupPartialSuccess,
		fleetv1alpha1.BackupAborted, fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupInProgress}
	for h, p := range phases {
		runAt(g, s, tick, h, 1)
		name := BackupName(s.Name, c, tick(h))
		g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ContainElement(name))
		for _, b := range backupsOf(g, s) {
			if b.Name == name {
				setPhase(g, p, b)
			}
		}
	}
	want := []string{BackupName(s.Name, c, tick(2)), BackupName(s.Name, c, tick(3)), BackupName(s.Name, c, tick(4)), BackupName(s.Name, c, tick(5))}
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(want))
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(want))
	g.Expect(eventstest.Notes(hubClient, s, "HistoryLimitDeleted")()).To(ContainElement(ContainSubstring("are beyond the schedule's history limits")))
}
