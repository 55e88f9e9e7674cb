package backuplocation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	hubevents "github.com/lifeboat-dev/lifeboat/hub/events"
)

// Reasons of the location's Events.
const (
	// EventConnectionLost: a cluster that could use the location no longer
	// can, or one could not from its first validation.
	EventConnectionLost = "ConnectionLost"
	// EventConnectionRestored: a cluster that could not use the location now can.
	EventConnectionRestored = "ConnectionRestored"
	// EventPhaseChanged: the location's phase changed (Valid, LimitedAvailability, Invalid, ...).
	EventPhaseChanged = "PhaseChanged"
)

// recordChanges records the changes of validity a person acts on, from
// before to loc: clusters' connections lost (Valid to not Valid, or a first
// validation that failed) or restored (not Valid to Valid), one Event each
// naming the clusters, and the location's phase changing. conns are loc's
// connections; before's are those its status.notValid lists, the others
// were Valid, unless the list left some out: a cluster it does not list
// then records nothing. A cluster
// validating for the first time records nothing: at thousands of clusters
// that would be thousands of Events saying all is well.
func recordChanges(rec events.EventRecorder, before, loc *fleetv1alpha1.BackupLocation, conns []fleetv1alpha1.ClusterConnection) {
	if rec == nil {
		return
	}
	old := make(map[string]backupv1alpha1.TargetPhase, len(before.Status.NotValid))
	for _, c := range before.Status.NotValid {
		old[c.Cluster] = c.Phase
	}
	complete := before.Status.NotValidOmitted == 0
	var lost, restored []string
	var lostOne, restoredOne string
	for _, c := range conns {
		was, listed := old[c.Cluster]
		switch {
		case !listed && !complete:
		case c.Phase == was:
		case c.Phase == backupv1alpha1.TargetValid && (was == backupv1alpha1.TargetInvalid || was == backupv1alpha1.TargetFailed):
			restored = append(restored, fmt.Sprintf("%s (was %s)", c.Cluster, was))
			restoredOne = fmt.Sprintf("Cluster %s can use the location again (was %s)", c.Cluster, was)
		case (c.Phase == backupv1alpha1.TargetInvalid || c.Phase == backupv1alpha1.TargetFailed) && c.Reason != fleetv1alpha1.ReasonClusterNotAllowed:
			lost = append(lost, fmt.Sprintf("%s (%s: %s)", c.Cluster, c.Phase, c.Reason))
			lostOne = fmt.Sprintf("Cluster %s cannot use the location: %s %s: %s", c.Cluster, c.Phase, c.Reason, c.Message)
		}
	}
	// One Event per kind of change and status write: the events library
	// folds Events of one object, reason and action into one anyway.
	recordClusters(rec, loc, corev1.EventTypeWarning, EventConnectionLost, lost, lostOne, "%d clusters cannot use the location: %s")
	recordClusters(rec, loc, corev1.EventTypeNormal, EventConnectionRestored, restored, restoredOne, "%d clusters can use the location again: %s")
	if before.Status.Phase != "" && loc.Status.Phase != before.Status.Phase {
		eventtype := corev1.EventTypeNormal
		if loc.Status.Phase != fleetv1alpha1.LocationValid && loc.Status.Phase != fleetv1alpha1.LocationValidationInProgress {
			eventtype = corev1.EventTypeWarning
		}
		hubevents.Record(rec, loc, eventtype, EventPhaseChanged, "Validate",
			fmt.Sprintf("The location is %s (was %s): %d of %d clusters Valid", loc.Status.Phase, before.Status.Phase,
				loc.Status.ValidClusters, loc.Status.SelectedClusters))
	}
}

// recordClusters records one Event for the clusters named: one, the note
// of the last of them, when it is the only one, else many with their count
// and names.
func recordClusters(rec events.EventRecorder, loc *fleetv1alpha1.BackupLocation, eventtype, reason string, names []string, one, many string) {
	switch {
	case len(names) == 1:
		hubevents.Record(rec, loc, eventtype, reason, "Validate", one)
	case len(names) > 1:
		hubevents.Record(rec, loc, eventtype, reason, "Validate", fmt.Sprintf(many, len(names), summarizeNames(names)))
	}
}
