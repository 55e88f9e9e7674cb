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

// recordChanges records an Event for each change of validity a person acts
// on, from before to loc: a cluster's connection lost (Valid to not Valid,
// or a first validation that failed) or restored (not Valid to Valid), and
// the location's phase changing. A cluster validating for the first time
// records nothing: at thousands of clusters that would be thousands of
// Events saying all is well.
func recordChanges(rec events.EventRecorder, before, loc *fleetv1alpha1.BackupLocation) {
	if rec == nil {
		return
	}
	old := make(map[string]backupv1alpha1.TargetPhase, len(before.Status.Clusters))
	for _, c := range before.Status.Clusters {
		old[c.Cluster] = c.Phase
	}
	for _, c := range loc.Status.Clusters {
		was, seen := old[c.Cluster]
		switch {
		case c.Phase == was:
		case c.Phase == backupv1alpha1.TargetValid && seen && (was == backupv1alpha1.TargetInvalid || was == backupv1alpha1.TargetFailed):
			hubevents.Record(rec, loc, corev1.EventTypeNormal, EventConnectionRestored, "Validate",
				fmt.Sprintf("Cluster %s can use the location again (was %s)", c.Cluster, was))
		case (c.Phase == backupv1alpha1.TargetInvalid || c.Phase == backupv1alpha1.TargetFailed) && c.Reason != fleetv1alpha1.ReasonClusterNotAllowed:
			hubevents.Record(rec, loc, corev1.EventTypeWarning, EventConnectionLost, "Validate",
				fmt.Sprintf("Cluster %s cannot use the location: %s %s: %s", c.Cluster, c.Phase, c.Reason, c.Message))
		}
	}
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
