package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BackupDeletionSpec names the backup whose data to delete.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new BackupDeletion"
type BackupDeletionSpec struct {
	// target is the BackupTarget that holds the backup. Outside lifeboat-system
	// the target's allowedNamespaces must select this object's namespace, and
	// only the namespace's own backups may be deleted.
	// +required
	Target ObjectName `json:"target"`

	// source is the backup to delete.
	// +required
	Source BackupSource `json:"source"`

	// force deletes whatever is in the backup's folder, even a backup that never
	// finished or whose backup.json is unreadable. Without it, such a backup is
	// left alone and the deletion fails with a reason.
	// +optional
	Force bool `json:"force,omitempty"`

	// hub identifies the hub Backup being deleted; unset for a team's own deletion.
	// +optional
	Hub *HubObjectReference `json:"hub,omitempty"`

	// tenancy, set by the hub for a hub tenant, is what that tenant may do on
	// this cluster; the spoke refuses anything outside it. Unset, the object
	// is held to no grant in lifeboat-system (a fleet admin's or the
	// cluster admin's) and to its own namespace elsewhere.
	// +optional
	Tenancy *Tenancy `json:"tenancy,omitempty"`
}

// BackupDeletionStatus is the progress and outcome of the deletion.
type BackupDeletionStatus struct {
	// conditions: Ready, and Completed once the deletion has ended.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the deletion stands; Completed also when there was nothing to delete.
	// +optional
	Phase TaskPhase `json:"phase,omitempty"`

	// completionTime is when the deletion ended, whatever the outcome.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// blobsDeleted is the number of blobs deleted.
	// +optional
	BlobsDeleted int64 `json:"blobsDeleted,omitempty"`
}

// BackupDeletion deletes one backup's data from a BackupTarget. backup.json goes
// first, so a half-deleted backup is never taken for a complete one.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bdel,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=".spec.target"
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=".spec.source.cluster"
// +kubebuilder:printcolumn:name="Backup ID",type=string,JSONPath=".spec.source.backupID"
// +kubebuilder:printcolumn:name="Force",type=boolean,JSONPath=".spec.force"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupDeletion struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the backup whose data to delete.
	// +required
	Spec BackupDeletionSpec `json:"spec"`

	// status is the progress and outcome of the deletion.
	// +optional
	Status BackupDeletionStatus `json:"status,omitempty"`
}

// BackupDeletionList is a list of BackupDeletions.
// +kubebuilder:object:root=true
type BackupDeletionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupDeletions.
	Items []BackupDeletion `json:"items"`
}
