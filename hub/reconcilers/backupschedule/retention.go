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
	sorted := append([]run(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].tick.Equal(sorted[j].tick) {
			return sorted[i].tick.After(sorted[j].tick)
		}
		return sorted[i].name > sorted[j].name
	})
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
