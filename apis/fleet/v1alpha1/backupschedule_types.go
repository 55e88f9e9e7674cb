package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// BackupSchedulePhase is whether a schedule creates backups.
// +kubebuilder:validation:Enum=Active;Suspended
type BackupSchedulePhase string

// Backup schedule phases.
const (
	ScheduleActive    BackupSchedulePhase = "Active"
	ScheduleSuspended BackupSchedulePhase = "Suspended"
)

// Labels and annotations on the Backups a BackupSchedule creates.
const (
	// LabelSchedule names the BackupSchedule, in the Backup's namespace, that
	// created the Backup.
	LabelSchedule = "fleet.lifeboat.dev/schedule"
	// LabelCluster names the cluster the Backup backs up.
	LabelCluster = "fleet.lifeboat.dev/cluster"
	// AnnotationScheduledTime is the run (RFC 3339, jitter not included) the
	// Backup was created for; retention counts days, weeks and months by it.
	AnnotationScheduledTime = "fleet.lifeboat.dev/scheduled-time"
)

// BackupScheduleSpec is what to back up, on which clusters, by which policy.
// +kubebuilder:validation:XValidation:rule="has(self.clusterSelector) || has(self.placementRef)",message="set clusterSelector or placementRef: a schedule must say which clusters to back up"
// +kubebuilder:validation:XValidation:rule="!(has(self.clusterSelector) && has(self.placementRef))",message="set clusterSelector or placementRef, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.retry) || !has(self.failedHistoryLimit) || self.failedHistoryLimit >= 1",message="failedHistoryLimit must be at least 1 with retry: a failed run is kept until it is retried",fieldPath=".failedHistoryLimit"
type BackupScheduleSpec struct {
	// policy is the SchedulePolicy, in the same namespace, that says when backups
	// run and how many are kept.
	// +required
	Policy backupv1alpha1.ObjectName `json:"policy"`

	// clusterSelector selects the BackupClusters to back up, by their labels; one
	// Backup per cluster is created at each run. An empty selector selects the
	// whole fleet. Clusters the template's location does not allow are reported,
	// not backed up. Either clusterSelector or placementRef is set.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// placementRef names an OCM Placement in the schedule's namespace whose
	// decided clusters are backed up, instead of clusterSelector; clusters it
	// decides for later are backed up from the next run on.
	// +optional
	PlacementRef *PlacementRef `json:"placementRef,omitempty"`

	// template is the Backup to create for each selected cluster.
	// +required
	Template BackupTemplate `json:"template"`

	// suspend stops new runs; running backups go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// concurrencyPolicy says what a run does for a cluster whose Backup of an
	// earlier run of this schedule has not finished (Pending or InProgress):
	// Allow creates the new Backup beside it; Forbid skips the run for that
	// cluster (status lastSkippedTime, Event RunSkipped); Replace deletes the
	// running Backup (the hub stops its run and deletes what it wrote, as
	// for any deleted Backup) and creates the new one.
	// +kubebuilder:default=Allow
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// startingDeadline: a run that is due for a cluster (its offset in the
	// jitter window included) more than this long ago is skipped for that
	// cluster instead of being made late, e.g. when the hub was down. Unset:
	// the latest missed run is made late, once.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="startingDeadline must be a duration such as 10m or 1h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('8760h'))",message="startingDeadline must be between 1m and 8760h"
	// +optional
	StartingDeadline *metav1.Duration `json:"startingDeadline,omitempty"`

	// successfulHistoryLimit caps, per cluster, how many successful (Success
	// or PartialSuccess) Backups of this schedule are kept: older ones are
	// deleted even if the policy's retention keeps them. At least 1, so the
	// newest successful Backup is never deleted. Unset: retention alone decides.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	SuccessfulHistoryLimit *int32 `json:"successfulHistoryLimit,omitempty"`

	// failedHistoryLimit caps, per cluster, how many Failed or Aborted Backups
	// of this schedule are kept, newest first; 0 deletes each once it ended.
	// Unset: retention alone decides (it keeps the newest failure when nothing
	// succeeded after it).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	FailedHistoryLimit *int32 `json:"failedHistoryLimit,omitempty"`

	// retry makes a new attempt of a run whose Backup Failed (a timeout
	// included; Aborted runs were stopped on purpose and are not retried),
	// as long as no later run started. Attempts are Backups named
	// <run's Backup>-r<N>, labelled with the run's Backup. Only schedules
	// retry: a Backup made by hand is not retried.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
}

// PlacementRef names an OCM Placement (cluster.open-cluster-management.io)
// in the namespace of the object that refers to it.
type PlacementRef struct {
	// name is the Placement's name.
	// +required
	Name backupv1alpha1.ObjectName `json:"name"`
}

// RetryPolicy says how often and how soon a failed scheduled run is tried again.
type RetryPolicy struct {
	// maxRetry is how many attempts are made after the first one fails.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	// +required
	MaxRetry int32 `json:"maxRetry"`

	// delay is how long after an attempt failed the next one is made.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="delay must be a duration such as 5m or 1h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="delay must be between 1m and 24h"
	// +kubebuilder:default="5m"
	// +optional
	Delay *metav1.Duration `json:"delay,omitempty"`
}

// Labels of a retry attempt, beside those of every scheduled Backup.
const (
	// LabelRetryOf names the Backup of the run that an attempt retries.
	LabelRetryOf = "fleet.lifeboat.dev/retry-of"
	// LabelAttempt is the attempt's number: 1 for the first retry.
	LabelAttempt = "fleet.lifeboat.dev/attempt"
)

// ConcurrencyPolicy says what a schedule's run does for a cluster whose
// previous Backup still runs.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

// Concurrency policies.
const (
	ConcurrencyAllow   ConcurrencyPolicy = "Allow"
	ConcurrencyForbid  ConcurrencyPolicy = "Forbid"
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// ScheduledCluster is a schedule's record of one selected cluster.
type ScheduledCluster struct {
	// cluster is the cluster's name.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Cluster string `json:"cluster"`

	// lastBackup is the name of the Backup created by the latest run.
	// +optional
	LastBackup string `json:"lastBackup,omitempty"`

	// lastPhase is the phase of that Backup.
	// +optional
	LastPhase BackupPhase `json:"lastPhase,omitempty"`

	// lastRunTime is when that Backup was due: its run plus the cluster's
	// offset in the jitter window (the hub creates it then).
	// +optional
	LastRunTime *metav1.Time `json:"lastRunTime,omitempty"`

	// lastSuccessfulTime is when the latest Backup that ended in Success was
	// due, like lastRunTime.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`

	// lastSkippedTime is the latest run that was skipped for the cluster
	// (concurrencyPolicy Forbid or startingDeadline); the Event RunSkipped
	// says why.
	// +optional
	LastSkippedTime *metav1.Time `json:"lastSkippedTime,omitempty"`

	// nextRunTime is when the next Backup for the cluster is due, jitter included.
	// +optional
	NextRunTime *metav1.Time `json:"nextRunTime,omitempty"`
}

// BackupScheduleStatus is the schedule's runs, per cluster.
type BackupScheduleStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is whether the schedule creates backups.
	// +optional
	Phase BackupSchedulePhase `json:"phase,omitempty"`

	// lastScheduleTime is when the latest run started.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// nextScheduleTime is when the next run starts.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`

	// clusters are the selected clusters and their runs.
	// +listType=map
	// +listMapKey=cluster
	// +optional
	Clusters []ScheduledCluster `json:"clusters,omitempty"`
}

// BackupSchedule creates a Backup of every selected cluster at each tick of a
// SchedulePolicy, and lets retention delete the old ones.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bsch,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a BackupSchedule's name is a label value on its Backups: at most 63 characters"
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=".spec.policy"
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=".spec.template.location"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=".spec.suspend",priority=1
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=".status.lastScheduleTime"
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=".status.nextScheduleTime"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to back up, on which clusters, by which policy.
	// +required
	Spec BackupScheduleSpec `json:"spec"`

	// status is the schedule's runs, per cluster.
	// +optional
	Status BackupScheduleStatus `json:"status,omitempty"`
}

// BackupScheduleList is a list of BackupSchedules.
// +kubebuilder:object:root=true
type BackupScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupSchedules.
	Items []BackupSchedule `json:"items"`
}
