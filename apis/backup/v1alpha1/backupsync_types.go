package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// TaskPhase is where a one-shot task stands: a sync, on the hub or a spoke, or a deletion.
// +kubebuilder:validation:Enum=Pending;InProgress;Completed;Failed
type TaskPhase string

// Task phases.
const (
	// TaskPending: waiting to start, e.g. for another sync of the same container.
	TaskPending    TaskPhase = "Pending"
	TaskInProgress TaskPhase = "InProgress"
	TaskCompleted  TaskPhase = "Completed"
	TaskFailed     TaskPhase = "Failed"
)

// SyncLocationAnnotation on a BackupSync names the hub BackupLocation (in the
// hub sync's namespace) that the target stands for; the spoke copies it into
// the catalog pages it writes.
const SyncLocationAnnotation = "fleet.lifeboat.dev/location"

// BackupSyncSpec says which target to list and which hub sync to report to.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new BackupSync"
type BackupSyncSpec struct {
	// target is the BackupTarget whose bucket to list.
	// +required
	Target ObjectName `json:"target"`

	// hub identifies the hub BackupSync this sync answers; the catalog pages the
	// spoke writes into its cluster namespace on the hub name it.
	// +required
	Hub HubObjectReference `json:"hub"`

	// pageSize is the most backups one BackupCatalog page holds.
	// +kubebuilder:default=200
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=500
	// +optional
	PageSize int32 `json:"pageSize,omitempty"`
}

// BackupSyncStatus is the progress and outcome of the listing.
type BackupSyncStatus struct {
	// conditions: Ready, and Completed once the sync has ended.
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
	Phase TaskPhase `json:"phase,omitempty"`

	// startTime is when the listing started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the last page was written, or the sync failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// found is the number of backups (complete, or tombstones) found in the bucket.
	// +optional
	Found int32 `json:"found,omitempty"`

	// pages is the number of catalog pages written to the hub.
	// +optional
	Pages int32 `json:"pages,omitempty"`
}

// BackupSync lists the backups in a target's bucket and writes them, page by page,
// as BackupCatalog objects into this cluster's namespace on the hub. The hub creates it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tsync,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=".spec.target"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Found",type=integer,JSONPath=".status.found"
// +kubebuilder:printcolumn:name="Pages",type=integer,JSONPath=".status.pages"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which target to list and which hub sync to report to.
	// +required
	Spec BackupSyncSpec `json:"spec"`

	// status is the progress and outcome of the listing.
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
