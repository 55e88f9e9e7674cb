package backupschedule

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func initStatus(s *fleetv1alpha1.BackupSchedule) {
	s.Status.Phase = fleetv1alpha1.ScheduleActive
	if s.Spec.Suspend {
		s.Status.Phase = fleetv1alpha1.ScheduleSuspended
	}
	s.Status.ObservedGeneration = s.Generation
}

// notReady says why the schedule makes no backups.
func notReady(s *fleetv1alpha1.BackupSchedule, reason, msg string) {
	s.Status.NextScheduleTime = nil
	setCondition(s, metav1.ConditionFalse, reason, msg)
}

// summarize writes the schedule's runs and, per selected cluster, its latest
// Backup, into the status, and the Ready condition.
func summarize(s *fleetv1alpha1.BackupSchedule, plan *Plan, sel selection, dues []due, runs map[string][]scheduled, now time.Time) {
	if !s.Spec.Suspend {
		if latest := plan.Latest(now); !latest.IsZero() {
			s.Status.LastScheduleTime = &metav1.Time{Time: latest}
		}
		s.Status.NextScheduleTime = timeOrNil(plan.Next(now))
	} else {
		s.Status.NextScheduleTime = nil
	}
	byCluster := map[string]due{}
	for _, d := range dues {
		byCluster[d.cluster] = d
	}
	old := map[string]fleetv1alpha1.ScheduledCluster{}
	for _, c := range s.Status.Clusters {
		old[c.Cluster] = c
	}
	clusters := make([]fleetv1alpha1.ScheduledCluster, 0, len(sel.clusters))
	for _, name := range sel.clusters {
		c := old[name]
		c.Cluster = name
		d, ok := byCluster[name]
		if rs := runs[name]; len(rs) > 0 {
			c.LastBackup = rs[0].name
			c.LastPhase = rs[0].phase
			if c.LastPhase == "" {
				c.LastPhase = fleetv1alpha1.BackupPending
			}
			ran := rs[0].tick.Add(plan.Offset(s.Namespace, s.Name, name))
			if c.LastRunTime == nil || c.LastRunTime.Time.Before(ran) {
				c.LastRunTime = &metav1.Time{Time: ran}
			}
			for _, x := range rs {
				if x.phase == fleetv1alpha1.BackupSuccess {
					c.LastSuccessfulTime = &metav1.Time{Time: x.tick.Add(plan.Offset(s.Namespace, s.Name, name))}
					break
				}
			}
		}
		if ok && !d.skipped.IsZero() {
			c.LastSkippedTime = &metav1.Time{Time: d.skipped}
		}
		c.NextRunTime = nil
		if ok && !s.Spec.Suspend && sel.usable {
			c.NextRunTime = timeOrNil(d.next)
		}
		clusters = append(clusters, c)
	}
	s.Status.Clusters = clusters

	switch {
	case !sel.usable:
		// allowedClusters said why.
		s.Status.NextScheduleTime = nil
	case len(sel.clusters) == 0:
		setCondition(s, metav1.ConditionFalse, fleetv1alpha1.ReasonNoClustersSelected, noneSelected(s))
	case len(sel.notBound) > 0:
		setCondition(s, metav1.ConditionFalse, fleetv1alpha1.ReasonClusterNotAllowed, fmt.Sprintf(
			"%d of the %d selected clusters are not backed up, the namespace may not use them: %s (%s)",
			len(sel.notBound), len(sel.clusters), abbreviate(sel.notBound, 5), sel.bindings))
	case len(sel.refused) > 0:
		setCondition(s, metav1.ConditionFalse, fleetv1alpha1.ReasonClusterNotAllowed, fmt.Sprintf(
			"BackupLocation %q does not select %d of the %d selected clusters, which are not backed up: %s (see the location's clusters and clusterSelector)",
			s.Spec.Template.Location, len(sel.refused), len(sel.clusters), abbreviate(sel.refused, 5)))
	case s.Spec.Suspend:
		setCondition(s, metav1.ConditionTrue, fleetv1alpha1.ReasonSuspended, fmt.Sprintf(
			"suspended: no new backups of the %d selected clusters; running ones go on and retention still applies", len(sel.clusters)))
	default:
		msg := fmt.Sprintf("backs up %d clusters at every run", len(sel.allowed))
		if s.Status.NextScheduleTime != nil {
			msg += "; the next run starts at " + s.Status.NextScheduleTime.UTC().Format(time.RFC3339)
		}
		setCondition(s, metav1.ConditionTrue, fleetv1alpha1.ReasonScheduled, msg)
	}
}

// noneSelected says, for a person, that the schedule selects no cluster.
func noneSelected(s *fleetv1alpha1.BackupSchedule) string {
	if ref := s.Spec.PlacementRef; ref != nil {
		return fmt.Sprintf("Placement %s decides for no managed BackupCluster; clusters it decides for later are backed up from the next run on", ref.Name)
	}
	return "clusterSelector selects no managed BackupCluster; clusters that match later are backed up from the next run on"
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t}
}

func setCondition(s *fleetv1alpha1.BackupSchedule, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: fleetv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
}
