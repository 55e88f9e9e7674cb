package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// ForceDeleteAnnotation, set to "true" on a Backup stuck in DeletePending,
// removes the hub record without deleting the data: the location keeps a
// tombstone, and the data is purged once a cluster can reach the location again.
const ForceDeleteAnnotation = "fleet.lifeboat.dev/force-delete"

// BackupPhase is where a Backup stands, from its run on the spoke to its deletion.
// +kubebuilder:validation:Enum=Pending;InProgress;Success;PartialSuccess;Failed;Aborted;Deleting;DeletePending;CloudBackupMissing
type BackupPhase string

// Backup phases. The first six mirror the spoke's ApplicationBackup phases.
const (
	BackupPending        BackupPhase = "Pending"
	BackupInProgress     BackupPhase = "InProgress"
	BackupSuccess        BackupPhase = "Success"
	BackupPartialSuccess BackupPhase = "PartialSuccess"
	BackupFailed         BackupPhase = "Failed"
	BackupAborted        BackupPhase = "Aborted"
	// BackupDeleting: a cluster is deleting the backup's data.
	BackupDeleting BackupPhase = "Deleting"
	// BackupDeletePending: the Backup is being deleted, but no cluster can reach
	// the location; see the Deleting condition for how to force it.
	BackupDeletePending BackupPhase = "DeletePending"
	// BackupCloudBackupMissing: a sync found no data for this backup in the location.
	BackupCloudBackupMissing BackupPhase = "CloudBackupMissing"
)

// Restorable is true for the phases a Restore accepts: the backup's data is
// complete for what it names (PartialSuccess names what it skipped).
func (p BackupPhase) Restorable() bool {
	return p == BackupSuccess || p == BackupPartialSuccess
}

// BackupOrigin says how a Backup came to be on the hub.
// +kubebuilder:validation:Enum=Hub;Schedule;Synced;SelfService
type BackupOrigin string

// Backup origins.
const (
	// OriginHub: created on the hub by a person or tool.
	OriginHub BackupOrigin = "Hub"
	// OriginSchedule: created by a BackupSchedule.
	OriginSchedule BackupOrigin = "Schedule"
	// OriginSynced: imported by a sync from a location's data, e.g. made by another hub.
	OriginSynced BackupOrigin = "Synced"
	// OriginSelfService: imported by a sync from a team's own ApplicationBackup on a cluster.
	OriginSelfService BackupOrigin = "SelfService"
)

// ExecRuleReferences name the ExecRules, in the Backup's namespace, to run around a backup.
type ExecRuleReferences struct {
	// pre rules run, in order, before any resource is read.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Pre []backupv1alpha1.ObjectName `json:"pre,omitempty"`

	// post rules run, in order, after resources and volumes are backed up.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Post []backupv1alpha1.ObjectName `json:"post,omitempty"`
}

// BackupTemplate is what to back up and where, for any cluster: a Backup adds the
// cluster, a BackupSchedule stamps one out per selected cluster.
type BackupTemplate struct {
	// location is the BackupLocation, in the same namespace, to back up to. It must
	// be Valid for the cluster, or the Backup fails at once with that reason.
	// +required
	Location backupv1alpha1.ObjectName `json:"location"`

	// selection chooses the resources to back up.
	// +optional
	Selection *backupv1alpha1.ResourceSelection `json:"selection,omitempty"`

	// execRules run commands in application pods before and after the backup.
	// +optional
	ExecRules *ExecRuleReferences `json:"execRules,omitempty"`

	// volumes says what the backup does with the data in the bound
	// PersistentVolumeClaims it takes: Data backs up their files, Skip
	// backs them up as objects only. Either way, a claim whose data is not
	// backed up is named in the backup's log and the backup ends
	// PartialSuccess.
	// +kubebuilder:default=Data
	// +optional
	Volumes backupv1alpha1.VolumePolicy `json:"volumes,omitempty"`

	// ttl is how long to keep the backup; unset keeps it until it is deleted
	// (or, for scheduled backups, until retention deletes it).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="ttl must be a duration such as 720h or 90m (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('87600h'))",message="ttl must be between 1h and 87600h (10 years)"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// timeout is how long the run may take once it was sent to the cluster.
	// A run not finished by then is stopped (its ApplicationBackup is
	// deleted, so the cluster aborts it and deletes what it wrote) and fails
	// with reason Timeout, or ClusterOffline when its BackupCluster is not
	// Available. Unset: no timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="timeout must be a duration such as 2h or 30m (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('168h'))",message="timeout must be between 1m and 168h (7 days)"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// BackupSpec is what to back up, on which cluster, and where to. Only ttl and
// timeout may change after creation.
// +kubebuilder:validation:XValidation:rule="self.location == oldSelf.location",message="location is immutable; create a new Backup",fieldPath=".location"
// +kubebuilder:validation:XValidation:rule="has(self.selection) == has(oldSelf.selection) && (!has(self.selection) || self.selection == oldSelf.selection)",message="selection is immutable; create a new Backup",fieldPath=".selection"
// +kubebuilder:validation:XValidation:rule="has(self.execRules) == has(oldSelf.execRules) && (!has(self.execRules) || self.execRules == oldSelf.execRules)",message="execRules are immutable; create a new Backup",fieldPath=".execRules"
// +kubebuilder:validation:XValidation:rule="has(self.volumes) == has(oldSelf.volumes) && (!has(self.volumes) || self.volumes == oldSelf.volumes)",message="volumes is immutable; create a new Backup",fieldPath=".volumes"
type BackupSpec struct {
	// cluster is the BackupCluster to back up.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable; create a new Backup"
	// +required
	Cluster backupv1alpha1.ClusterName `json:"cluster"`

	// BackupTemplate is what to back up and where to.
	BackupTemplate `json:",inline"`
}

// BackupStatus is the progress and outcome of the backup, fed back from the spoke.
type BackupStatus struct {
	// conditions: Dispatched, Ready, Completed and, while deleting, Deleting.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the Backup stands.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`

	// origin says how the Backup came to be on the hub.
	// +optional
	Origin BackupOrigin `json:"origin,omitempty"`

	// recordedSelection is, for a Backup a sync imported, what its
	// backup.json records of the selection it was made with (bounded, for
	// people to read; restores and the protection report do not use it).
	// +optional
	RecordedSelection *SelectionSummary `json:"recordedSelection,omitempty"`

	// BackupResult is what the run has produced so far.
	backupv1alpha1.BackupResult `json:",inline"`
}

// Backup backs up Kubernetes resources of one cluster of the fleet to a BackupLocation.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bkp,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=".spec.cluster"
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=".spec.location"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=".status.stage",priority=1
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=".status.progress.itemsDone"
// +kubebuilder:printcolumn:name="Origin",type=string,JSONPath=".status.origin",priority=1
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=".status.expiration"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to back up, on which cluster, and where to.
	// +required
	Spec BackupSpec `json:"spec"`

	// status is the progress and outcome of the backup.
	// +optional
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Backups.
	Items []Backup `json:"items"`
}
