package backupschedule

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func TestLatestAndNext(t *testing.T) {
	created := at("2026-03-02T10:00:30Z") // a Monday
	tests := []struct {
		name         string
		spec         fleetv1alpha1.SchedulePolicySpec
		now          string
		latest, next string // "" is zero
	}{
		{"interval: first run at creation", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)}, "2026-03-02T10:00:30Z", "2026-03-02T10:00:30Z", "2026-03-02T11:00:30Z"},
		{"interval: before creation", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)}, "2026-03-02T09:00:00Z", "", "2026-03-02T10:00:30Z"},
		{"interval: between runs", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour)}, "2026-03-02T12:59:59Z", "2026-03-02T12:00:30Z", "2026-03-02T13:00:30Z"},
		{"interval: on a run", fleetv1alpha1.SchedulePolicySpec{Interval: dur(90 * time.Minute)}, "2026-03-02T13:00:30Z", "2026-03-02T13:00:30Z", "2026-03-02T14:30:30Z"},
		{"interval: a year later catches up only the latest", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Minute)}, "2027-03-02T10:07:00Z", "2027-03-02T10:06:30Z", "2027-03-02T10:07:30Z"},
		{"cron: no run before the first time after creation", fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *"}, "2026-03-03T01:59:59Z", "", "2026-03-03T02:00:00Z"},
		{"cron: daily", fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *"}, "2026-03-05T07:00:00Z", "2026-03-05T02:00:00Z", "2026-03-06T02:00:00Z"},
		{"cron: exactly on a run", fleetv1alpha1.SchedulePolicySpec{Cron: "*/15 * * * *"}, "2026-03-02T11:15:00Z", "2026-03-02T11:15:00Z", "2026-03-02T11:30:00Z"},
		{"cron: @weekly after months down", fleetv1alpha1.SchedulePolicySpec{Cron: "@weekly"}, "2026-07-01T00:00:00Z", "2026-06-28T00:00:00Z", "2026-07-05T00:00:00Z"},
		{"cron: @monthly", fleetv1alpha1.SchedulePolicySpec{Cron: "@monthly"}, "2026-05-17T00:00:00Z", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"},
		{"cron: weekdays only, on a Saturday", fleetv1alpha1.SchedulePolicySpec{Cron: "30 6 * * 1-5"}, "2026-03-07T12:00:00Z", "2026-03-06T06:30:00Z", "2026-03-09T06:30:00Z"},
		{"cron: every minute on Mondays, on a Tuesday", fleetv1alpha1.SchedulePolicySpec{Cron: "* * * * 1"}, "2026-03-10T12:00:00Z", "2026-03-09T23:59:00Z", "2026-03-16T00:00:00Z"},
		{"cron: leap day, years later", fleetv1alpha1.SchedulePolicySpec{Cron: "0 0 29 2 *"}, "2031-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
		{"cron: time zone", fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *", TimeZone: "Europe/Berlin"}, "2026-03-05T07:00:00Z", "2026-03-05T01:00:00Z", "2026-03-06T01:00:00Z"},
		{"cron: time zone across DST", fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *", TimeZone: "Europe/Berlin"}, "2026-04-01T07:00:00Z", "2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p, err := NewPlan(tt.spec, created)
			g.Expect(err).NotTo(HaveOccurred())
			now := at(tt.now)
			want := func(s string) time.Time {
				if s == "" {
					return time.Time{}
				}
				return at(s)
			}
			g.Expect(p.Latest(now).UTC()).To(Equal(want(tt.latest).UTC()), "latest")
			g.Expect(p.Next(now).UTC()).To(Equal(want(tt.next).UTC()), "next")
		})
	}
}

func TestLatestIsCheapAfterLongDowntime(t *testing.T) {
	g := NewWithT(t)
	p, err := NewPlan(fleetv1alpha1.SchedulePolicySpec{Cron: "* * * * *"}, at("2020-01-01T00:00:00Z"))
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Expect(p.Latest(at("2026-01-01T00:00:30Z"))).To(BeTemporally("==", at("2026-01-01T00:00:00Z")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 50*time.Millisecond), "it looks back an hour, not six years")
}

func TestInvalidPolicies(t *testing.T) {
	tests := []struct {
		spec fleetv1alpha1.SchedulePolicySpec
		want string
	}{
		{fleetv1alpha1.SchedulePolicySpec{Cron: "61 * * * *"}, `cron "61 * * * *"`},
		{fleetv1alpha1.SchedulePolicySpec{Cron: "0 0 31 2 *"}, "never runs"},
		{fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *", TimeZone: "Mars/Olympus"}, `timeZone "Mars/Olympus"`},
		{fleetv1alpha1.SchedulePolicySpec{Interval: dur(30 * time.Second)}, "shorter than 1m"},
		{fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour), Jitter: dur(time.Hour)}, "jitter 1h0m0s is not shorter than interval"},
		{fleetv1alpha1.SchedulePolicySpec{}, "set one of cron or interval"},
		{fleetv1alpha1.SchedulePolicySpec{Cron: "@every 5m"}, "use interval"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := NewPlan(tt.spec, at("2026-03-02T10:00:00Z"))
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestOffsetIsDeterministicWithinTheWindowAndSpread(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Offset("team", "nightly", "garden--a", 0)).To(BeZero())
	seen := map[time.Duration]int{}
	for i := range 1000 {
		c := fmt.Sprintf("garden--shoot-%d", i)
		o := Offset("team", "nightly", c, time.Hour)
		g.Expect(o).To(Equal(Offset("team", "nightly", c, time.Hour)), "the same for every run and hub")
		g.Expect(o).To(And(BeNumerically(">=", 0), BeNumerically("<", time.Hour)))
		g.Expect(o % time.Second).To(BeZero())
		seen[o/(6*time.Minute)]++
	}
	g.Expect(seen).To(HaveLen(10), "1,000 clusters fill every tenth of the window")
	for bucket, n := range seen {
		g.Expect(n).To(BeNumerically("~", 100, 40), "bucket %d", bucket)
	}
}

func TestBackupName(t *testing.T) {
	g := NewWithT(t)
	tick := at("2026-03-02T10:00:30Z")
	n := BackupName("nightly", "garden--shop", tick)
	g.Expect(n).To(MatchRegexp(`^nightly-[0-9a-f]{8}-202603021000$`))
	g.Expect(BackupName("nightly", "garden--shop", tick)).To(Equal(n), "deterministic")
	g.Expect(BackupName("nightly", "garden--shop", tick.In(time.FixedZone("x", 3600)))).To(Equal(n), "in UTC")
	g.Expect(BackupName("nightly", "garden--shop2", tick)).NotTo(Equal(n))
	g.Expect(BackupName("nightly", "garden--shop", tick.Add(time.Minute))).NotTo(Equal(n))

	long := "a-very-long-schedule-name-that-goes-on-and-on-and-on-for-63-chr"
	g.Expect(long).To(HaveLen(63))
	l1, l2 := BackupName(long, "c", tick), BackupName(long[:60]+"xyz", "c", tick)
	g.Expect(l1).To(HaveLen(63))
	g.Expect(l1).NotTo(Equal(l2), "schedules shortened to the same prefix still differ")
	dns := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	g.Expect(dns.MatchString(BackupName("ends-with-dash-at-41-characters-exactly-x-y", "c", tick))).To(BeTrue())
}
