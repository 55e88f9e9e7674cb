package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// ExecRuleSpec lists the actions of the rule.
type ExecRuleSpec struct {
	// actions run in order, each in the pods it selects among those of the
	// namespaces being backed up.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="size(self) > 0",message="actions must list at least one action"
	// +listType=atomic
	// +required
	Actions []backupv1alpha1.ExecAction `json:"actions"`
}

// ExecRuleStatus says whether the rule can be used.
type ExecRuleStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase says whether the rule can be used; Invalid e.g. for a pod selector
	// with an invalid label value.
	// +optional
	Phase ConfigPhase `json:"phase,omitempty"`

	// usedBy names the BackupSchedules of this namespace whose template refers
	// to the rule (at most 32).
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	UsedBy []backupv1alpha1.ObjectName `json:"usedBy,omitempty"`
}

// ExecRule is a list of commands to run in application pods before or after a
// backup, e.g. to flush and freeze a database. Backups refer to it by name as a
// pre or post rule; the hub sends its actions with the backup to the cluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=exr,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ExecRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the actions of the rule.
	// +required
	Spec ExecRuleSpec `json:"spec"`

	// status says whether the rule can be used.
	// +optional
	Status ExecRuleStatus `json:"status,omitempty"`
}

// ExecRuleList is a list of ExecRules.
// +kubebuilder:object:root=true
type ExecRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ExecRules.
	Items []ExecRule `json:"items"`
}
