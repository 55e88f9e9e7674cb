package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// LabelRunLogUID on a log page is the UID of the hub RunLog it answers.
const LabelRunLogUID = "fleet.lifeboat.dev/runlog-uid"

// RunLogSpec names the backup or restore whose log to fetch.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new RunLog"
type RunLogSpec struct {
	// kind is Backup or Restore.
	// +required
	Kind backupv1alpha1.RunKind `json:"kind"`

	// name is the Backup or Restore, in the RunLog's namespace.
	// +required
	Name backupv1alpha1.ObjectName `json:"name"`

	// maxBytes is how much of the log's end to fetch, as text: at most 1Mi
	// (1048576), 256Ki unless set. A longer log is cut at its start and
	// status.truncated says so.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	// +kubebuilder:default=262144
	// +optional
	MaxBytes int32 `json:"maxBytes,omitempty"`
}

// RunLogStatus is the fetched log, or why there is none.
type RunLogStatus struct {
	// conditions: Ready (false while waiting or after a failure, with why).
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Completed once text holds the log, Failed if it cannot be fetched.
	// +optional
	Phase backupv1alpha1.TaskPhase `json:"phase,omitempty"`

	// cluster is the cluster that reads the log from the bucket.
	// +optional
	Cluster backupv1alpha1.ClusterName `json:"cluster,omitempty"`

	// text is the end of the log: JSON lines, decompressed.
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Text string `json:"text,omitempty"`

	// truncated says the log is longer than text: its start was left out.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// sizeBytes is the size of the whole log, decompressed.
	// +kubebuilder:validation:Minimum=0
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`

	// completionTime is when the log was fetched or the fetch failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// RunLog fetches the log of a Backup or Restore from the bucket, through a
// cluster that can read it, into its status; `lifeboat logs` creates one,
// prints it and deletes it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=".spec.kind"
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=".spec.name"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=".status.cluster"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type RunLog struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the backup or restore whose log to fetch.
	// +required
	Spec RunLogSpec `json:"spec"`

	// status is the fetched log, or why there is none.
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

// LogPage is a run's log, as a spoke read it for a hub RunLog.
type LogPage struct {
	// runLog is the hub RunLog the page answers.
	// +required
	RunLog backupv1alpha1.HubObjectReference `json:"runLog"`

	// text is the end of the log, decompressed.
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Text string `json:"text,omitempty"`

	// truncated says the log is longer than text.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// sizeBytes is the size of the whole log, decompressed.
	// +kubebuilder:validation:Minimum=0
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`

	// error says why the log could not be read; text is then empty.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Error string `json:"error,omitempty"`
}

// LogPageName is the name of the catalog page that answers the spoke
// RunLog named spokeRunLog.
func LogPageName(spokeRunLog string) string { return "log-" + spokeRunLog }
