package backupschedule

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func TestDueRuns(t *testing.T) {
	created := at("2026-03-02T10:00:00Z")
	plan, err := NewPlan(fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour), Jitter: dur(10 * time.Minute)}, created)
	if err != nil {
		t.Fatal(err)
	}
	off := plan.Offset("team", "hourly", "c1")
	if off == 0 {
		t.Fatal("pick a cluster with an offset")
	}
	tick := func(h int) time.Time { return created.Add(time.Duration(h) * time.Hour) }
	mt := func(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }
	known := func(last *metav1.Time) fleetv1alpha1.ScheduledCluster {
		return fleetv1alpha1.ScheduledCluster{Cluster: "c1", LastRunTime: last}
	}
	withRun := func(t time.Time) map[string][]scheduled {
		return map[string][]scheduled{"c1": {{run: run{name: BackupName("hourly", "c1", t), tick: t, phase: ok}}}}
	}
	tests := []struct {
		name         string
		status       fleetv1alpha1.BackupScheduleStatus
		runs         map[string][]scheduled
		now          time.Time
		create, next time.Time
	}{
		{
			name: "a new schedule: its first run, at the cluster's offset",
			now:  created.Add(off), create: tick(0), next: tick(1).Add(off),
		},
		{
			name: "before the cluster's offset nothing is due",
			now:  created.Add(off - time.Second), next: tick(0).Add(off),
		},
		{
			name:   "the run it has a Backup for is done",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3)), Clusters: []fleetv1alpha1.ScheduledCluster{known(mt(tick(2).Add(off)))}},
			runs:   withRun(tick(3)),
			now:    tick(3).Add(30 * time.Minute), next: tick(4).Add(off),
		},
		{
			name:   "a Backup deleted by hand is not made again: the status remembers the run",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3)), Clusters: []fleetv1alpha1.ScheduledCluster{known(mt(tick(3).Add(off)))}},
			now:    tick(3).Add(30 * time.Minute), next: tick(4).Add(off),
		},
		{
			name:   "a hub that lost its status finds the Backup (names are deterministic anyway)",
			status: fleetv1alpha1.BackupScheduleStatus{},
			runs:   withRun(tick(3)),
			now:    tick(3).Add(30 * time.Minute), next: tick(4).Add(off),
		},
		{
			name:   "after five missed runs only the latest is made",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(1)), Clusters: []fleetv1alpha1.ScheduledCluster{known(mt(tick(1).Add(off)))}},
			runs:   withRun(tick(1)),
			now:    tick(6).Add(off), create: tick(6), next: tick(7).Add(off),
		},
		{
			name:   "missed runs, and the latest's slot not reached yet: wait for it rather than make two",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(1)), Clusters: []fleetv1alpha1.ScheduledCluster{known(mt(tick(1).Add(off)))}},
			runs:   withRun(tick(1)),
			now:    tick(6).Add(off - time.Second), next: tick(6).Add(off),
		},
		{
			name:   "a cluster selected after the run started joins at the next run",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3))},
			now:    tick(3).Add(30 * time.Minute), next: tick(4).Add(off),
		},
		{
			name: "a cluster refused by the location, then allowed during a run, joins at the next run",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3)),
				Clusters: []fleetv1alpha1.ScheduledCluster{{Cluster: "c1"}}},
			now: tick(3).Add(30 * time.Minute), next: tick(4).Add(off),
		},
		{
			name: "a cluster never backed up runs at the run the status promised",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3)),
				Clusters: []fleetv1alpha1.ScheduledCluster{{Cluster: "c1", NextRunTime: mt(tick(3).Add(off))}}},
			now: tick(3).Add(off), create: tick(3), next: tick(4).Add(off),
		},
		{
			name: "a cluster never backed up is not backed up for a run before the promised one",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(3)),
				Clusters: []fleetv1alpha1.ScheduledCluster{{Cluster: "c1", NextRunTime: mt(tick(4).Add(off))}}},
			now: tick(3).Add(off), next: tick(4).Add(off),
		},
		{
			name:   "a cluster selected before the run started takes part",
			status: fleetv1alpha1.BackupScheduleStatus{LastScheduleTime: mt(tick(2))},
			now:    tick(3).Add(30 * time.Minute), create: tick(3), next: tick(4).Add(off),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := dueRuns("team", "hourly", &tt.status, plan, []string{"c1"}, tt.runs, tt.now)
			g.Expect(d).To(HaveLen(1))
			g.Expect(d[0].create).To(BeTemporally("==", tt.create), "create")
			g.Expect(d[0].next).To(BeTemporally("==", tt.next), "next")
		})
	}
}
