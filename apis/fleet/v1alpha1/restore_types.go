package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// RestoreSpec is which Backup to restore, to which cluster, and how.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new Restore"
type RestoreSpec struct {
	// backup is the Backup, in the same namespace, to restore. It must have ended
	// in Success or PartialSuccess.
	// +required
	Backup backupv1alpha1.ObjectName `json:"backup"`

	// cluster is the cluster to restore to; unset means the cluster the backup
	// was taken on. Another cluster must have a Valid connection to the backup's
	// location (a migration).
	// +optional
	Cluster backupv1alpha1.ClusterName `json:"cluster,omitempty"`

	// RestoreOptions say what to restore and how.
	backupv1alpha1.RestoreOptions `json:",inline"`
}

// RestoreStatus is the progress and outcome of the restore, fed back from the spoke.
type RestoreStatus struct {
	// conditions: Dispatched, Ready and Completed.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the restore stands.
	// +optional
	Phase backupv1alpha1.RestorePhase `json:"phase,omitempty"`

	// cluster is the cluster restored to, once resolved.
	// +optional
	Cluster backupv1alpha1.ClusterName `json:"cluster,omitempty"`

	// RestoreResult is what the restore has done so far.
	backupv1alpha1.RestoreResult `json:",inline"`

	// log is where the cluster kept the restore's log in the location's
	// container (under its prefix), as the cluster reported it: one JSON
	// line per item with its result. `lifeboat logs restore` prints it.
	// Empty until the restore ended, or when the log could not be kept.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Log string `json:"log,omitempty"`
}

// Restore restores a Backup into its source cluster or another one.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rst,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=".spec.backup"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=".status.cluster"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=".status.progress.itemsDone",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is which Backup to restore, to which cluster, and how.
	// +required
	Spec RestoreSpec `json:"spec"`

	// status is the progress and outcome of the restore.
	// +optional
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Restores.
	Items []Restore `json:"items"`
}
