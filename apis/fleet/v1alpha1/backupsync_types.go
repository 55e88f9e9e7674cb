package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// SyncOriginLabel, with value SyncOriginValue, is on every Backup that a sync
// imported; it is set when the Backup is created, so that the backup
// reconciler never sends an imported Backup to a cluster as a new backup.
const (
	SyncOriginLabel = "fleet.lifeboat.dev/origin"
	SyncOriginValue = "synced"
)

// ImportedByAnnotation is the UID of the BackupSync that created an imported
// Backup. A sync gives its status only to a Backup that it created itself
// (an import interrupted before the status was written); any other Backup
// with the import's name, whatever its labels, is left alone.
const ImportedByAnnotation = "fleet.lifeboat.dev/imported-by"

// BackupSyncSpec says which location to import.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new BackupSync"
type BackupSyncSpec struct {
	// location is the BackupLocation, in the same namespace, whose container to list.
	// +required
	Location backupv1alpha1.ObjectName `json:"location"`

	// cluster is the cluster to list the container from; it must have a Valid
	// connection. Unset means any cluster with one.
	// +optional
	Cluster backupv1alpha1.ClusterName `json:"cluster,omitempty"`
}

// BackupSyncStatus is the progress and outcome of the import.
type BackupSyncStatus struct {
	// conditions: Ready and Completed; while waiting for another sync of the same
	// container, Ready is False with reason WaitingForSync.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the sync stands.
	// +optional
	Phase backupv1alpha1.TaskPhase `json:"phase,omitempty"`

	// cluster is the cluster that listed the container.
	// +optional
	Cluster backupv1alpha1.ClusterName `json:"cluster,omitempty"`

	// startTime is when the listing started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the import ended, whatever the outcome.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// found is the number of backups found in the container.
	// +optional
	Found int32 `json:"found,omitempty"`

	// imported is the number of backups new to the hub, imported as Backups.
	// +optional
	Imported int32 `json:"imported,omitempty"`

	// missing is the number of hub Backups whose data was not found; they are
	// now CloudBackupMissing.
	// +optional
	Missing int32 `json:"missing,omitempty"`

	// rejected is the number of catalog entries that failed the hub's checks.
	// +optional
	Rejected int32 `json:"rejected,omitempty"`

	// skipped is the number of folders of the container that the cluster
	// did not list as backups (unreadable, of a newer format, naming another
	// folder); rejections names them.
	// +optional
	Skipped int32 `json:"skipped,omitempty"`

	// rejections name what the sync did not import, each with why: the
	// folders the cluster skipped (as the cluster reports them) and the
	// entries the hub rejected. At most 20; skipped and rejected count them all.
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	// +optional
	Rejections []string `json:"rejections,omitempty"`
}

// BackupSync imports what a location's container holds: backups new to the hub
// become Backups (origin Synced or SelfService), and Backups whose data is gone
// become CloudBackupMissing. Only one sync runs at a time per storage account and
// container; the others wait as Pending.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bsync,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=".spec.location"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=".status.cluster"
// +kubebuilder:printcolumn:name="Found",type=integer,JSONPath=".status.found"
// +kubebuilder:printcolumn:name="Imported",type=integer,JSONPath=".status.imported"
// +kubebuilder:printcolumn:name="Missing",type=integer,JSONPath=".status.missing"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which location to import.
	// +required
	Spec BackupSyncSpec `json:"spec"`

	// status is the progress and outcome of the import.
	// +optional
	Status BackupSyncStatus `json:"status,omitempty"`
}

// BackupSyncList is a list of BackupSyncs.
// +kubebuilder:object:root=true
type BackupSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupSyncs.
	Items []BackupSync `json:"items"`
}
