package backupschedule

import (
	"fmt"
	"sort"
	"time"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// run is what retention needs to know of one scheduled Backup.
type run struct {
	name  string
	tick  time.Time
	phase fleetv1alpha1.BackupPhase
}

// unsuccessful is true for runs that ended without a usable backup.
func unsuccessful(p fleetv1alpha1.BackupPhase) bool {
	return p == fleetv1alpha1.BackupFailed || p == fleetv1alpha1.BackupAborted
}

// expired picks, among one cluster's runs of one schedule, those retention
// deletes. Like restic's "forget": the keep rules count successful runs
// (Success, PartialSuccess), newest first; keepLast keeps the latest n,
// keepDaily/Weekly/Monthly the latest of each of the n most recent days,
// ISO weeks and months (in loc) that have one; a run is kept if any rule keeps
// it. Always kept: the newest Success and the newest successful run; every
// run that has not finished (never deleted while it runs); and the newest
// failed or aborted run if nothing succeeded after it, so the failure stays
// visible. Other failed and aborted runs are deleted. nil keeps everything.
func expired(runs []run, r *fleetv1alpha1.Retention, loc *time.Location) []string {
	if r == nil {
		return nil
	}
	sorted := newestFirst(runs)
	keep := map[string]bool{}
	var good []run
	for _, b := range sorted {
		if b.phase.Restorable() {
			good = append(good, b)
		}
	}
	keepBuckets(keep, good, int(r.KeepLast), func(b run) string { return b.name })
	keepBuckets(keep, good, int(r.KeepDaily), func(b run) string { return b.tick.In(loc).Format("2006-01-02") })
	keepBuckets(keep, good, int(r.KeepWeekly), func(b run) string {
		y, w := b.tick.In(loc).ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	})
	keepBuckets(keep, good, int(r.KeepMonthly), func(b run) string { return b.tick.In(loc).Format("2006-01") })
	if len(good) > 0 {
		keep[good[0].name] = true
	}
	for _, b := range good {
		if b.phase == fleetv1alpha1.BackupSuccess {
			keep[b.name] = true
			break
		}
	}
	for _, b := range sorted {
		if b.phase.Restorable() {
			break
		}
		if unsuccessful(b.phase) {
			keep[b.name] = true
			break
		}
	}
	var out []string
	for _, b := range sorted {
		if (b.phase.Restorable() || unsuccessful(b.phase)) && !keep[b.name] {
			out = append(out, b.name)
		}
	}
	return out
}

// keepBuckets keeps the newest run of each of the first n buckets of runs
// (sorted newest first).
func keepBuckets(keep map[string]bool, runs []run, n int, bucket func(run) string) {
	last := ""
	for _, b := range runs {
		if n <= 0 {
			return
		}
		if k := bucket(b); k != last {
			keep[b.name] = true
			last = k
			n--
		}
	}
}

// newestFirst is a copy of runs sorted by run, newest first (by name among
// runs of the same time).
func newestFirst(runs []run) []run {
	sorted := append([]run(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].tick.Equal(sorted[j].tick) {
			return sorted[i].tick.After(sorted[j].tick)
		}
		return sorted[i].name > sorted[j].name
	})
	return sorted
}

// overLimits picks, among one cluster's runs of one schedule, the successful
// (Success, PartialSuccess) runs beyond the newest successful ones and the
// Failed or Aborted runs beyond the newest failed ones. A nil limit caps
// nothing. Runs that have not finished are never picked, and successful is
// at least 1 (the schema says so), so the newest successful run is never
// picked either.
func overLimits(runs []run, successful, failed *int32) []string {
	var out []string
	seenGood, seenBad := int32(0), int32(0)
	for _, b := range newestFirst(runs) {
		switch {
		case b.phase.Restorable():
			seenGood++
			if successful != nil && seenGood > max(*successful, 1) {
				out = append(out, b.name)
			}
		case unsuccessful(b.phase):
			seenBad++
			if failed != nil && seenBad > *failed {
				out = append(out, b.name)
			}
		}
	}
	return out
}
