package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RunKind is the kind of run whose log is asked for.
// +kubebuilder:validation:Enum=Backup;Restore
type RunKind string

// Run kinds.
const (
	RunBackup  RunKind = "Backup"
	RunRestore RunKind = "Restore"
)

// Bounds of the text of a run's log that a RunLog fetches.
const (
	// DefaultRunLogBytes is how much of a log's end is fetched unless asked otherwise.
	DefaultRunLogBytes = 256 * 1024
	// MaxRunLogBytes is the most of a log's end that is ever fetched: it has
	// to fit in one object on the hub.
	MaxRunLogBytes = 1024 * 1024
)

// RunLogSpec says which log to read and which hub request to answer.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new RunLog"
// +kubebuilder:validation:XValidation:rule="self.kind == 'Restore' ? has(self.restoreLog) : !has(self.restoreLog)",message="restoreLog is set for a Restore's log and only for it"
type RunLogSpec struct {
	// target is the BackupTarget whose bucket holds the log.
	// +required
	Target ObjectName `json:"target"`

	// source is the backup: a backup's log is log.jsonl.gz in its folder; a
	// restore's log is in the folder's restores/ folder.
	// +required
	Source BackupSource `json:"source"`

	// kind is Backup for the backup's own log, Restore for a restore's.
	// +required
	Kind RunKind `json:"kind"`

	// restoreLog is the path of the restore's log, relative to the target's
	// prefix, as the restore reported it; the spoke reads it only if it is
	// a restore log in source's folder.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	RestoreLog string `json:"restoreLog,omitempty"`

	// maxBytes is how much of the log's end to send, as text.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	// +kubebuilder:default=262144
	// +optional
	MaxBytes int32 `json:"maxBytes,omitempty"`

	// hub identifies the hub RunLog this one answers; the catalog page the
	// spoke writes into its cluster namespace on the hub names it.
	// +required
	Hub HubObjectReference `json:"hub"`
}

// RunLogStatus is where the reading stands.
type RunLogStatus struct {
	// conditions: Ready, and Completed once the log was sent or could not be.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the reading stands.
	// +optional
	Phase TaskPhase `json:"phase,omitempty"`
}

// RunLog reads the log of one backup or restore from a target's bucket and
// writes its end, as text, as a BackupCatalog page into this cluster's
// namespace on the hub. The hub creates it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=".spec.target"
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=".spec.kind"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type RunLog struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which log to read and which hub request to answer.
	// +required
	Spec RunLogSpec `json:"spec"`

	// status is where the reading stands.
	// +optional
	Status RunLogStatus `json:"status,omitempty"`
}

// RunLogList is a list of RunLogs.
// +kubebuilder:object:root=true
type RunLogList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the RunLogs.
	Items []RunLog `json:"items"`
}
