package backupschedule

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

const (
	ok      = fleetv1alpha1.BackupSuccess
	partial = fleetv1alpha1.BackupPartialSuccess
	failed  = fleetv1alpha1.BackupFailed
	running = fleetv1alpha1.BackupInProgress
	pending = fleetv1alpha1.BackupPending
)

// daily makes one run a day at 02:00 UTC, the last on 2026-03-31, newest first.
func daily(phases ...fleetv1alpha1.BackupPhase) []run {
	last := at("2026-03-31T02:00:00Z")
	out := make([]run, len(phases))
	for i, p := range phases {
		t := last.AddDate(0, 0, -i)
		out[i] = run{name: t.Format("0102"), tick: t, phase: p}
	}
	return out
}

func TestExpired(t *testing.T) {
	tests := []struct {
		name string
		runs []run
		keep fleetv1alpha1.Retention
		loc  *time.Location
		want []string
	}{
		{
			name: "keepLast 2 of 4",
			runs: daily(ok, ok, ok, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 2},
			want: []string{"0329", "0328"},
		},
		{
			name: "running and pending runs are never deleted nor counted",
			runs: daily(running, pending, ok, ok, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 2},
			want: []string{"0327"},
		},
		{
			name: "failed runs do not count; the newest failure stays while nothing succeeded after it",
			runs: daily(failed, failed, ok, failed, ok, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 2},
			want: []string{"0330", "0328", "0326"},
		},
		{
			name: "a failure older than the newest success goes",
			runs: daily(ok, failed, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 2},
			want: []string{"0330"},
		},
		{
			name: "partial successes count as successful",
			runs: daily(partial, ok, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 1},
			want: []string{"0329"},
		},
		{
			name: "the newest Success stays even when partial successes fill keepLast",
			runs: daily(partial, partial, ok, ok),
			keep: fleetv1alpha1.Retention{KeepLast: 2},
			want: []string{"0328"},
		},
		{
			name: "keepDaily with several runs a day keeps the latest of each day",
			runs: []run{
				{name: "d3-b", tick: at("2026-03-03T14:00:00Z"), phase: ok},
				{name: "d3-a", tick: at("2026-03-03T02:00:00Z"), phase: ok},
				{name: "d2-b", tick: at("2026-03-02T14:00:00Z"), phase: ok},
				{name: "d2-a", tick: at("2026-03-02T02:00:00Z"), phase: ok},
				{name: "d1-b", tick: at("2026-03-01T14:00:00Z"), phase: ok},
			},
			keep: fleetv1alpha1.Retention{KeepDaily: 2},
			want: []string{"d3-a", "d2-a", "d1-b"},
		},
		{
			name: "days are counted in the policy's time zone",
			runs: []run{
				{name: "late", tick: at("2026-03-02T23:30:00Z"), phase: ok}, // 3 March in Berlin
				{name: "early", tick: at("2026-03-02T22:30:00Z"), phase: ok},
				{name: "noon", tick: at("2026-03-02T12:00:00Z"), phase: ok},
			},
			keep: fleetv1alpha1.Retention{KeepDaily: 2},
			loc:  berlin(),
			// Berlin: late is on 3 March, early and noon on 2 March; in UTC
			// all three would be one day and early would go too.
			want: []string{"noon"},
		},
		{
			name: "keepWeekly uses ISO weeks",
			runs: daily(ok, ok, ok, ok, ok, ok, ok, ok, ok, ok), // 31 March (Tue) back to 22 March (Sun)
			keep: fleetv1alpha1.Retention{KeepWeekly: 2},
			// kept: 31 (week 14), 29 (Sun, week 13)
			want: []string{"0330", "0328", "0327", "0326", "0325", "0324", "0323", "0322"},
		},
		{
			name: "union of keepLast, keepWeekly and keepMonthly",
			runs: []run{
				{name: "apr-06", tick: at("2026-04-06T02:00:00Z"), phase: ok},
				{name: "apr-05", tick: at("2026-04-05T02:00:00Z"), phase: ok},
				{name: "apr-01", tick: at("2026-04-01T02:00:00Z"), phase: ok},
				{name: "mar-31", tick: at("2026-03-31T02:00:00Z"), phase: ok},
				{name: "mar-15", tick: at("2026-03-15T02:00:00Z"), phase: ok},
				{name: "feb-20", tick: at("2026-02-20T02:00:00Z"), phase: ok},
				{name: "jan-20", tick: at("2026-01-20T02:00:00Z"), phase: ok},
			},
			keep: fleetv1alpha1.Retention{KeepLast: 1, KeepWeekly: 2, KeepMonthly: 3},
			// last: apr-06; weekly: apr-06 (W15), apr-05 (W14); monthly: apr-06, mar-31, feb-20
			want: []string{"apr-01", "mar-15", "jan-20"},
		},
		{
			name: "nothing finished, nothing deleted",
			runs: daily(running, pending),
			keep: fleetv1alpha1.Retention{KeepLast: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			NewWithT(t).Expect(expired(tt.runs, &tt.keep, loc)).To(ConsistOf(asAny(tt.want)...))
		})
	}
}

func TestNoRetentionKeepsAll(t *testing.T) {
	NewWithT(t).Expect(expired(daily(ok, ok, failed, ok), nil, time.UTC)).To(BeEmpty())
}

// The history limits count what retention kept, newest first, and only ever
// delete more: failedHistoryLimit 0 deletes the newest failure retention
// keeps in sight; running runs are not counted; the newest successful run
// is never picked.
func TestOverLimits(t *testing.T) {
	g := NewWithT(t)
	two, zero := int32(2), int32(0)
	runs := daily(running, failed, ok, partial, failed, ok, ok)
	kept := map[string]bool{}
	for _, r := range runs {
		kept[r.name] = true
	}
	for _, n := range expired(runs, &fleetv1alpha1.Retention{KeepLast: 10}, time.UTC) {
		delete(kept, n)
	}
	var left []run
	for _, r := range runs {
		if kept[r.name] {
			left = append(left, r)
		}
	}
	g.Expect(left).To(HaveLen(6), "retention deletes the older failure")
	g.Expect(overLimits(left, &two, &zero)).To(ConsistOf(runs[1].name, runs[5].name, runs[6].name))
	g.Expect(overLimits(left, nil, nil)).To(BeEmpty())
	one := int32(1)
	g.Expect(overLimits(daily(partial, ok), &one, nil)).To(ConsistOf(daily(partial, ok)[1].name), "the newest successful is PartialSuccess")
	g.Expect(overLimits(daily(ok), &zero, nil)).To(BeEmpty(), "never the newest successful, whatever the limit")
}

func berlin() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return l
}

func asAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
