package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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

// ExecPolicy says after which outcome of the earlier stages a post action runs.
// +kubebuilder:validation:Enum=Always;OnSuccess;OnFailure
type ExecPolicy string

// Execution policies of post actions.
const (
	// ExecAlways runs the post action whatever happened before it.
	ExecAlways ExecPolicy = "Always"
	// ExecOnSuccess runs it only when the pre actions and the resources succeeded.
	ExecOnSuccess ExecPolicy = "OnSuccess"
	// ExecOnFailure runs it only when a pre action or the resources failed.
	ExecOnFailure ExecPolicy = "OnFailure"
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

	// background starts the command and goes on once it writes its first
	// output (at most 30s or its timeout later) without waiting for it to
	// end; it is stopped when the backup finishes or its timeout passes. Use
	// it to hold a lock (e.g. a read lock) while the following stages run.
	// +optional
	Background bool `json:"background,omitempty"`

	// pods says whether the action runs in one selected pod or in all of them.
	// +kubebuilder:default=All
	// +optional
	Pods ExecPods `json:"pods,omitempty"`

	// executionPolicy says when a post action runs: Always (the default),
	// OnSuccess (the pre actions and the resources succeeded) or OnFailure.
	// Pre actions always run and may not set it.
	// +optional
	ExecutionPolicy ExecPolicy `json:"executionPolicy,omitempty"`

	// maxRetry is how many more times a failed action is tried, in each pod,
	// before it counts as failed. Background actions are not retried.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`
}

// NameAt is the action's name, or #n for the n-th action (i+1) of its list,
// as status and logs name it.
func (a ExecAction) NameAt(i int) string {
	if a.Name != "" {
		return a.Name
	}
	return fmt.Sprintf("#%d", i+1)
}

// ExecHooks are the exec actions a spoke runs before and after it backs up resources.
// +kubebuilder:validation:XValidation:rule="!has(self.pre) || self.pre.all(a, !has(a.executionPolicy))",message="executionPolicy is for post actions: pre actions always run"
// +kubebuilder:validation:XValidation:rule="!has(self.post) || self.post.all(a, !has(a.background) || !a.background)",message="background is for pre actions: a post action has nothing after it to hold a lock for"
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

// ExecOutcome is how an exec action ended.
// +kubebuilder:validation:Enum=Succeeded;Failed;Skipped
type ExecOutcome string

// Exec action outcomes.
const (
	// ExecSucceeded: the action exited 0 in every pod it ran in.
	ExecSucceeded ExecOutcome = "Succeeded"
	// ExecFailed: the action failed, timed out or found no pod to run in.
	ExecFailed ExecOutcome = "Failed"
	// ExecSkipped: the action did not run, by its executionPolicy.
	ExecSkipped ExecOutcome = "Skipped"
)

// ExecResult is how one exec action of a backup went. Its output is in the
// backup's log.
type ExecResult struct {
	// stage is PreExecRule or PostExecRule.
	// +required
	Stage BackupStage `json:"stage"`

	// name is the action's name, or #n for the n-th action of its stage.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// outcome says how the action ended.
	// +required
	Outcome ExecOutcome `json:"outcome"`

	// pods is the number of pods the action ran in.
	// +optional
	Pods int32 `json:"pods,omitempty"`

	// message says, for an action that failed or was skipped, why.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// Pod annotations for backup commands (K8up's method 2, docs/commands.md).
const (
	// BackupCommandAnnotation is a command, run as `sh -c <value>` in the
	// pod's container, whose standard output is the backup.
	BackupCommandAnnotation = "backup.lifeboat.dev/backup-command"
	// BackupFileAnnotation is the output's file name (default: the pod's
	// top controller's name, or the pod's, with ".out").
	BackupFileAnnotation = "backup.lifeboat.dev/backup-file"
	// BackupContainerAnnotation is the container the commands run in
	// (default: the pod's first container).
	BackupContainerAnnotation = "backup.lifeboat.dev/backup-container"
	// RestoreCommandAnnotation is a command, run as `sh -c <value>`, that
	// reads the output back from its standard input on restore.
	RestoreCommandAnnotation = "backup.lifeboat.dev/restore-command"
)
