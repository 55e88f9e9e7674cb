package backupschedule

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
)

// hourlySchedule makes cluster c, a location in ns that allows it, an hourly
// policy without jitter (retention keepLast 10, or none), and schedule name
// of c with mutate applied. It returns the schedule and the time of its run h.
func hourlySchedule(t *testing.T, g *WithT, ns, c, name string, retention bool, mutate func(*fleetv1alpha1.BackupScheduleSpec)) (*fleetv1alpha1.BackupSchedule, func(h int) time.Time) {
	ctx := context.Background()
	newCluster(t, g, c, map[string]string{"tier": name})
	newLocation(t, g, ns, "primary", c)
	if retention {
		newPolicy(t, g, ns, "hourly", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)})
	} else {
		pol := &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
			Spec: fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)}}
		g.Expect(hubClient.Create(ctx, pol)).To(Succeed())
		t.Cleanup(func() { _ = hubClient.Delete(ctx, pol) })
	}
	setClock(time.Now()) // not where an earlier test left it, which would make a run at creation
	s := newSchedule(t, g, ns, name, "hourly", "tier", name, mutate)
	t.Cleanup(func() {
		_ = hubClient.DeleteAllOf(ctx, &fleetv1alpha1.Backup{}, client.InNamespace(ns), client.MatchingLabels{fleetv1alpha1.LabelSchedule: name})
	})
	return s, func(h int) time.Time { return s.CreationTimestamp.Add(time.Duration(h) * time.Hour) }
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
	s, tick := hourlySchedule(t, g, ns, c, "conc", true, func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.ConcurrencyPolicy = fleetv1alpha1.ConcurrencyForbid
	})

	runAt(g, s, tick, 0, 1)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	setPhase(g, fleetv1alpha1.BackupInProgress, backupsOf(g, s)...)

	t.Log("Forbid: run 1 is skipped while run 0 still runs")
	runAt(g, s, tick, 1, 1)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(
		HaveField("LastSkippedTime", HaveField("Time", BeTemporally("==", tick(1).Truncate(time.Second)))))))
	g.Expect(names(backupsOf(g, s))).To(ConsistOf(BackupName(s.Name, c, tick(0))))
	g.Eventually(eventstest.Notes(hubClient, s, "RunSkipped")).WithTimeout(timeout).Should(ConsistOf(And(
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
	s, tick := hourlySchedule(t, g, ns, c, "deadline", true, func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.StartingDeadline = dur(10 * time.Minute)
	})

	runAt(g, s, tick, 0, 5)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	succeed(g, backupsOf(g, s)...)

	t.Log("the hub was down for runs 1 to 3 and looks again 30m after run 3: skipped")
	runAt(g, s, tick, 3, 30)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(
		HaveField("LastSkippedTime", HaveField("Time", BeTemporally("==", tick(3).Truncate(time.Second)))))))
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(BackupName(s.Name, c, tick(0))))
	g.Eventually(eventstest.Notes(hubClient, s, "RunSkipped")).WithTimeout(timeout).Should(ConsistOf(
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
	const ns, c = "team-history", "history-a"
	s, tick := hourlySchedule(t, g, ns, c, "history", false, func(s *fleetv1alpha1.BackupScheduleSpec) {
		two, one := int32(2), int32(1)
		s.SuccessfulHistoryLimit, s.FailedHistoryLimit = &two, &one
	})
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
	g.Eventually(eventstest.Notes(hubClient, s, "HistoryLimitDeleted")).WithTimeout(timeout).Should(ContainElement(ContainSubstring("are beyond the schedule's history limits")))
}

// A failed run is retried maxRetry times, each attempt delay after the
// previous one failed, as Backups <run>-r<N> labelled with the run's Backup.
func TestRetryRetriesAFailedRunMaxRetryTimesWithTheDelay(t *testing.T) {
	g := NewWithT(t)
	const ns, c = "team-retry", "retry-a"
	s, tick := hourlySchedule(t, g, ns, c, "retry", true, func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.Retry = &fleetv1alpha1.RetryPolicy{MaxRetry: 2, Delay: dur(10 * time.Minute)}
	})
	first := BackupName(s.Name, c, tick(0))
	runAt(g, s, tick, 0, 1)
	g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(first))

	attempts := []string{first}
	for n := 1; n <= 2; n++ {
		failedAt := tick(0).Add(time.Duration(15*n) * time.Minute)
		failAt(g, s, attempts[n-1], failedAt)
		t.Logf("attempt %d failed: no retry before the delay", n-1)
		setClock(failedAt.Add(9 * time.Minute))
		poke(g, s)
		retry := first + "-r" + strconv.Itoa(n)
		g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).ShouldNot(ContainElement(retry))

		t.Logf("retry %d once the delay passed", n)
		setClock(failedAt.Add(10 * time.Minute))
		poke(g, s)
		attempts = append(attempts, retry)
		// Retention keeps the newest failure in sight; the older attempts go.
		g.Eventually(func() []string { return names(backupsOf(g, s)) }).WithTimeout(timeout).Should(ConsistOf(attempts[n-1:]))
		for _, b := range backupsOf(g, s) {
			if b.Name == retry {
				g.Expect(b.Labels).To(And(HaveKeyWithValue(fleetv1alpha1.LabelRetryOf, first), HaveKeyWithValue(fleetv1alpha1.LabelAttempt, strconv.Itoa(n)),
					HaveKeyWithValue(fleetv1alpha1.LabelSchedule, s.Name), HaveKeyWithValue(fleetv1alpha1.LabelCluster, c)))
				g.Expect(b.Annotations).To(HaveKeyWithValue(fleetv1alpha1.AnnotationScheduledTime, tick(0).UTC().Format(time.RFC3339)))
			}
		}
		g.Eventually(eventstest.Notes(hubClient, s, "RetryRun")).WithTimeout(timeout).Should(ContainElement(
			ContainSubstring(fmt.Sprintf("%s (attempt %d of 2 retries, after %s failed)", retry, n, attempts[n-1]))))
	}

	t.Log("the last retry fails too: no more attempts")
	failAt(g, s, attempts[2], tick(0).Add(50*time.Minute))
	setClock(tick(0).Add(59 * time.Minute))
	poke(g, s)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", ConsistOf(
		And(HaveField("LastBackup", attempts[2]), HaveField("LastPhase", fleetv1alpha1.BackupFailed)))))
	g.Consistently(func() []string { return names(backupsOf(g, s)) }).WithTimeout(2 * time.Second).Should(ConsistOf(attempts[2]))
}

// failAt writes that the schedule's Backup name failed at t, as the backup
// reconciler would.
func failAt(g *WithT, s *fleetv1alpha1.BackupSchedule, name string, at time.Time) {
	for _, b := range backupsOf(g, s) {
		if b.Name == name {
			before := b.DeepCopy()
			b.Status.Phase, b.Status.CompletionTime = fleetv1alpha1.BackupFailed, &metav1.Time{Time: at}
			g.Expect(hubClient.Status().Patch(context.Background(), &b, client.MergeFrom(before))).To(Succeed())
			return
		}
	}
	g.Expect(name).To(BeEmpty(), "no Backup %s", name)
}
