package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func schedulesCommand() *command {
	var cluster string
	return &command{
		use:     "schedules [--cluster C]",
		short:   "List backup schedules: policy, timing, clusters, how their last runs went",
		example: "lifeboat schedules -n team-a -o wide",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&cluster, "cluster", "", "only schedules that cover this cluster")
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.listNamespace()
			list := &fleetv1alpha1.BackupScheduleList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return apiError(err, "backup schedules")
			}
			kept := list.Items[:0]
			for _, sc := range list.Items {
				if cluster == "" || scheduled(&sc, cluster) != nil {
					kept = append(kept, sc)
				}
			}
			list.Items = kept
			if s.structured() {
				return s.printObject(list)
			}
			if len(list.Items) == 0 {
				s.note("No backup schedules found %s.", inNamespace(ns))
				return nil
			}
			policies := map[string]*fleetv1alpha1.SchedulePolicy{}
			timing := func(sc *fleetv1alpha1.BackupSchedule) string {
				key := sc.Namespace + "/" + string(sc.Spec.Policy)
				p, ok := policies[key]
				if !ok {
					p = &fleetv1alpha1.SchedulePolicy{}
					if err := c.Get(ctx, client.ObjectKey{Namespace: sc.Namespace, Name: string(sc.Spec.Policy)}, p); err != nil {
						p = nil
					}
					policies[key] = p
				}
				return policyTiming(p)
			}
			var headers []string
			if ns == "" {
				headers = append(headers, "NAMESPACE")
			}
			headers = append(headers, "NAME", "POLICY", "SCHEDULE", "PHASE", "CLUSTERS", "LAST OK", "LAST RUN", "NEXT RUN", "AGE")
			if s.wide() {
				headers = append(headers, "CONCURRENCY", "CLUSTERS FROM", "OLDEST SUCCESS")
			}
			t := newTable(s.out(), headers...)
			for i := range list.Items {
				sc := &list.Items[i]
				var cells []string
				if ns == "" {
					cells = append(cells, sc.Namespace)
				}
				ok, last, next, oldest := scheduleRuns(sc)
				cells = append(cells, sc.Name, string(sc.Spec.Policy), timing(sc), string(sc.Status.Phase),
					fmt.Sprint(len(sc.Status.Clusters)), fmt.Sprintf("%d/%d", ok, len(sc.Status.Clusters)),
					age(last), until(next), age(&sc.CreationTimestamp))
				if s.wide() {
					cells = append(cells, string(sc.Spec.ConcurrencyPolicy), clustersFrom(sc), age(oldest))
				}
				t.row(cells...)
			}
			return t.flush()
		},
	}
}

// scheduled is the schedule's record of cluster, nil if it does not cover it.
func scheduled(sc *fleetv1alpha1.BackupSchedule, cluster string) *fleetv1alpha1.ScheduledCluster {
	for i := range sc.Status.Clusters {
		if sc.Status.Clusters[i].Cluster == cluster {
			return &sc.Status.Clusters[i]
		}
	}
	return nil
}

// scheduleRuns sums up a schedule's clusters: how many last ended Success,
// the latest run, the soonest next run and the oldest last success (nil if
// a cluster never had one).
func scheduleRuns(sc *fleetv1alpha1.BackupSchedule) (ok int, last, next, oldest *metav1.Time) {
	never := false
	for _, c := range sc.Status.Clusters {
		if c.LastPhase == fleetv1alpha1.BackupSuccess {
			ok++
		}
		if c.LastRunTime != nil && (last == nil || c.LastRunTime.After(last.Time)) {
			last = c.LastRunTime
		}
		if c.NextRunTime != nil && (next == nil || c.NextRunTime.Before(next)) {
			next = c.NextRunTime
		}
		switch {
		case c.LastSuccessfulTime == nil:
			never = true
		case oldest == nil || c.LastSuccessfulTime.Before(oldest):
			oldest = c.LastSuccessfulTime
		}
	}
	if never {
		oldest = nil
	}
	return ok, last, next, oldest
}

// policyTiming is a policy's cron (with its time zone) or interval.
func policyTiming(p *fleetv1alpha1.SchedulePolicy) string {
	switch {
	case p == nil:
		return "?"
	case p.Spec.Cron != "" && p.Spec.TimeZone != "":
		return p.Spec.Cron + " " + p.Spec.TimeZone
	case p.Spec.Cron != "":
		return p.Spec.Cron
	case p.Spec.Interval != nil:
		return "every " + shortDuration(p.Spec.Interval.Duration)
	}
	return ""
}

// clustersFrom says how a schedule selects its clusters.
func clustersFrom(sc *fleetv1alpha1.BackupSchedule) string {
	switch {
	case sc.Spec.PlacementRef != nil:
		return "placement " + string(sc.Spec.PlacementRef.Name)
	case sc.Spec.ClusterSelector != nil:
		return metav1.FormatLabelSelector(sc.Spec.ClusterSelector)
	}
	return ""
}

// until is how long until t, kubectl style ("in 5m"); empty if unset.
func until(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return "in " + duration.ShortHumanDuration(max(time.Until(t.Time), 0))
}

func describeRestoreCommand() *command {
	return &command{
		use:     "describe restore NAME",
		short:   "Show a restore: backup, cluster, options, progress, warnings and errors, conditions",
		example: "lifeboat describe restore shop-to-spoke-2 -n team-a",
		args:    1,
		run: func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			r := &fleetv1alpha1.Restore{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: s.namespace(), Name: args[0]}, r); err != nil {
				return apiError(err, objectName("restore", s.namespace(), args[0]))
			}
			if s.structured() {
				return s.printObject(r)
			}
			b := &fleetv1alpha1.Backup{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: string(r.Spec.Backup)}, b); err != nil {
				b = nil
			}
			describeRestore(s.out(), r, b)
			return nil
		},
	}
}

func describeRestore(w io.Writer, r *fleetv1alpha1.Restore, b *fleetv1alpha1.Backup) {
	field := fields(w)
	field("Name", r.Name)
	field("Namespace", r.Namespace)
	backup := string(r.Spec.Backup)
	if b == nil {
		backup += " (not on the hub)"
	} else if b.Status.BackupID != "" {
		backup += fmt.Sprintf(" (cluster %s, backup ID %s)", b.Spec.Cluster, b.Status.BackupID)
	}
	field("Backup", backup)
	field("Cluster", restoreCluster(r, b))
	field("Phase", string(r.Status.Phase))
	field("Selection", selection(r.Spec.Selection))
	field("Namespace map", mapping(r.Spec.NamespaceMapping))
	field("Class map", mapping(r.Spec.StorageClassMappings))
	existing := string(r.Spec.ExistingResourcePolicy)
	if existing == "" {
		existing = "Skip"
	}
	field("Existing", existing)
	field("Created", timestamp(&r.CreationTimestamp))
	field("Started", timestamp(r.Status.StartTime))
	completed := timestamp(r.Status.CompletionTime)
	if r.Status.CompletionTime != nil {
		completed += ", took " + took(r.Status.StartTime, r.Status.CompletionTime)
	}
	field("Completed", completed)
	if p := r.Status.Progress; p != nil {
		field("Progress", fmt.Sprintf("%d of %d items", p.ItemsDone, p.ItemsTotal))
	} else {
		field("Progress", "")
	}
	field("Warnings", fmt.Sprint(r.Status.Warnings))
	field("Errors", fmt.Sprint(r.Status.Errors))
	printConditions(w, r.Status.Conditions)
}
