package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ExecErrorPolicy says what a failing exec action does to the backup that runs it.
// +kubebuilder:validation:Enum=Fail;Continue
type ExecErrorPolicy string

// Exec error policies.
const (
	// ExecErrorFail fails the backup when the action fails or times out.
	ExecErrorFail ExecErrorPolicy = "Fail"
	// ExecErrorContinue records a warning and goes on.
	ExecErrorContinue ExecErrorPolicy = "Continue"
)

// ExecPods says in how many of the selected pods an action runs.
// +kubebuilder:validation:Enum=One;All
type ExecPods string

// Exec pod choices.
const (
	// ExecInOnePod runs the action in one ready pod of those selected, e.g. to
	// quiesce a database once through its primary.
	ExecInOnePod ExecPods = "One"
	// ExecInAllPods runs the action in every selected pod.
	ExecInAllPods ExecPods = "All"
)

// ExecAction is a command run inside application pods around a backup, e.g. to
// flush and freeze a database before its volumes are copied.
type ExecAction struct {
	// name identifies the action in status messages and logs.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="name must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +optional
	Name string `json:"name,omitempty"`

	// podSelector selects the pods to run in, among the pods of the namespaces
	// being backed up.
	// +required
	PodSelector metav1.LabelSelector `json:"podSelector"`

	// container to run in; empty means the pod's first container.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="container must be a container name: at most 63 lowercase letters, digits and '-'"
	// +optional
	Container string `json:"container,omitempty"`

	// command is the program and its arguments, run without a shell: to use shell
	// syntax, run ["/bin/sh", "-c", "..."].
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="size(self) > 0 && size(self[0]) > 0",message="command must name the program to run"
	// +listType=atomic
	// +required
	Command []string `json:"command"`

	// timeout is how long the action may run before it counts as failed.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="timeout must be a duration such as 30s or 5m (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('1h'))",message="timeout must be between 1s and 1h"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// onError says what a failure of this action does to the backup.
	// +kubebuilder:default=Fail
	// +optional
	OnError ExecErrorPolicy `json:"onError,omitempty"`

	// background starts the command and goes on without waiting for it; it is
	// stopped when the backup finishes or its timeout passes. Use it to hold a
	// lock (e.g. a read lock) while the following stages run.
	// +optional
	Background bool `json:"background,omitempty"`

	// pods says whether the action runs in one selected pod or in all of them.
	// +kubebuilder:default=All
	// +optional
	Pods ExecPods `json:"pods,omitempty"`
}

// ExecHooks are the exec actions a spoke runs before and after it backs up resources.
type ExecHooks struct {
	// pre actions run, in order, before any resource is read.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Pre []ExecAction `json:"pre,omitempty"`

	// post actions run, in order, after the resources and volumes are backed up,
	// also when that failed.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Post []ExecAction `json:"post,omitempty"`
}
