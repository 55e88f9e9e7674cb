package backupschedule

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	_ "time/tzdata" // time zones of cron policies, whatever the image ships

	"github.com/robfig/cron/v3"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Plan is a SchedulePolicy made usable: when the runs of one schedule are due.
// Runs are the policy's cron times after start, or start + k·interval for
// k ≥ 0 (an interval schedule runs first when it is created).
type Plan struct {
	cron     cron.Schedule
	interval time.Duration
	start    time.Time
	jitter   time.Duration
	loc      *time.Location
}

// NewPlan checks the policy's spec and returns its plan for a schedule
// created at start. The error says, for a user, what is wrong.
func NewPlan(spec fleetv1alpha1.SchedulePolicySpec, start time.Time) (*Plan, error) {
	p := &Plan{start: start, loc: time.UTC}
	if spec.Jitter != nil {
		if spec.Jitter.Duration < 0 {
			return nil, fmt.Errorf("jitter %s is negative", spec.Jitter.Duration)
		}
		p.jitter = spec.Jitter.Duration
	}
	if spec.TimeZone != "" {
		loc, err := time.LoadLocation(spec.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("timeZone %q is not an IANA time zone: %v", spec.TimeZone, err)
		}
		p.loc = loc
	}
	switch {
	case spec.Cron != "" && spec.Interval != nil:
		return nil, fmt.Errorf("set exactly one of cron or interval")
	case spec.Cron != "":
		if strings.HasPrefix(spec.Cron, "@every") || strings.Contains(spec.Cron, "TZ=") {
			return nil, fmt.Errorf("cron %q: use interval instead of @every and timeZone instead of TZ=", spec.Cron)
		}
		s, err := cron.ParseStandard(spec.Cron)
		if err != nil {
			return nil, fmt.Errorf("cron %q: %v", spec.Cron, err)
		}
		p.cron = s
		if p.Next(start).IsZero() {
			return nil, fmt.Errorf("cron %q never runs", spec.Cron)
		}
	case spec.Interval != nil:
		if spec.Interval.Duration < time.Minute {
			return nil, fmt.Errorf("interval %s is shorter than 1m", spec.Interval.Duration)
		}
		p.interval = spec.Interval.Duration
		if p.jitter >= p.interval {
			return nil, fmt.Errorf("jitter %s is not shorter than interval %s", p.jitter, p.interval)
		}
	default:
		return nil, fmt.Errorf("set one of cron or interval")
	}
	return p, nil
}

// Location is the time zone of the policy (UTC unless a cron's timeZone says
// otherwise); retention's days, weeks and months are counted in it.
func (p *Plan) Location() *time.Location { return p.loc }

// Next is the first run strictly after t; zero if there is none.
func (p *Plan) Next(t time.Time) time.Time {
	if p.cron == nil {
		if t.Before(p.start) {
			return p.start
		}
		k := t.Sub(p.start)/p.interval + 1
		return p.start.Add(k * p.interval)
	}
	if t.Before(p.start) {
		t = p.start.Add(-time.Nanosecond)
	}
	return p.cron.Next(t.In(p.loc))
}

// windows are how far back Latest looks, widening only while it finds no run:
// each step costs at most the runs in the window that found one.
var windows = []time.Duration{time.Hour, 24 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 4*366*24*time.Hour + 24*time.Hour, 28 * 366 * 24 * time.Hour}

// Latest is the most recent run at or before now; zero before the first run.
func (p *Plan) Latest(now time.Time) time.Time {
	if now.Before(p.start) {
		return time.Time{}
	}
	if p.cron == nil {
		k := now.Sub(p.start) / p.interval
		return p.start.Add(k * p.interval)
	}
	for _, w := range windows {
		from := now.Add(-w)
		if from.Before(p.start) {
			from = p.start.Add(-time.Nanosecond)
		}
		var last time.Time
		for t := p.cron.Next(from.In(p.loc)); !t.IsZero() && !t.After(now); t = p.cron.Next(t) {
			last = t
		}
		if !last.IsZero() || !from.After(p.start) {
			return last
		}
	}
	return time.Time{}
}

// Offset is where cluster's backups start within the jitter window of every
// run of schedule namespace/name: the same for every run and every hub,
// different between clusters, whole seconds, shorter than the window.
func (p *Plan) Offset(namespace, name, cluster string) time.Duration {
	return Offset(namespace, name, cluster, p.jitter)
}

// Offset is Plan.Offset for a jitter window.
func Offset(namespace, name, cluster string, jitter time.Duration) time.Duration {
	secs := uint64(jitter / time.Second)
	if secs == 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(namespace + "/" + name + "/" + cluster))
	return time.Duration(h.Sum64()%secs) * time.Second
}

// maxScheduleInName leaves room for "-<8 hex>-<12 digits>" in 63 characters.
const maxScheduleInName = 63 - 1 - 8 - 1 - 12

// BackupName is the name of the Backup that schedule makes of cluster for
// the run at tick: "<schedule>-<hash>-<YYYYMMDDHHMM>" (UTC), at most 63
// characters. The hash of schedule and cluster names tells clusters apart
// and schedules whose names were shortened. Runs are at least a minute apart,
// so the minute tells runs apart; the same run always has the same name, so
// a hub that restarts never backs up a cluster twice for one run.
func BackupName(schedule, cluster string, tick time.Time) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(schedule + "/" + cluster))
	prefix := schedule
	if len(prefix) > maxScheduleInName {
		prefix = strings.TrimRight(prefix[:maxScheduleInName], "-.")
	}
	return fmt.Sprintf("%s-%08x-%s", prefix, h.Sum32(), tick.UTC().Format("200601021504"))
}

// maxGapRuns bounds how many runs LongestGap looks at.
const maxGapRuns = 1000

// LongestGap is the longest time between two consecutive runs of the plan
// among its runs in the year after from (at most 1,000 runs): an interval
// plan's interval; for a cron, e.g. 24h for "0 2 * * *", 72h for
// "0 2 * * 1-5" (Friday to Monday), 31 days for "@monthly". Zero when the
// plan runs at most once in that year.
func (p *Plan) LongestGap(from time.Time) time.Duration {
	if p.cron == nil {
		return p.interval
	}
	var longest time.Duration
	until := from.AddDate(1, 0, 1)
	prev := p.cron.Next(from.In(p.loc))
	for i := 0; i < maxGapRuns && !prev.IsZero() && prev.Before(until); i++ {
		next := p.cron.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}
