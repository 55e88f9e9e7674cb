package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of the pods the spoke makes from a PreBackupPod.
const (
	// PreBackupPodLabel names the PreBackupPod a pod was made from.
	PreBackupPodLabel = "backup.lifeboat.dev/prebackuppod"
	// BackupRunLabel is the UID of the ApplicationBackup whose run made the pod.
	BackupRunLabel = "backup.lifeboat.dev/backup-run"
	// RestoreRunLabel is the UID of the ApplicationRestore whose run made the pod.
	RestoreRunLabel = "backup.lifeboat.dev/restore-run"
	// BackupIDAnnotation is the ID of the backup the pod's output went into
	// (or, for a restore, came from).
	BackupIDAnnotation = "backup.lifeboat.dev/backup-id"
)

// DefaultReadyTimeout is how long the spoke waits for a PreBackupPod's pod to
// be ready when its spec says nothing.
const DefaultReadyTimeout = 5 * time.Minute

// PreBackupPodSpec is a pod that a backup of its namespace starts, runs a
// command in whose standard output is the backup, and deletes.
// +kubebuilder:validation:XValidation:rule="!has(self.container) || self.pod.spec.containers.exists(c, c.name == self.container)",message="container must name one of pod.spec.containers"
type PreBackupPodSpec struct {
	// backupCommand is the program and its arguments, run without a shell in
	// the pod's container once it is ready; what it writes to standard
	// output is the backup (streamed into the repository, never held in
	// memory), what it writes to standard error goes to the backup's log. A
	// non-zero exit fails this item: the backup ends PartialSuccess. To use
	// shell syntax, run ["/bin/sh", "-c", "..."].
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="size(self[0]) > 0",message="backupCommand must name the program to run"
	// +listType=atomic
	// +required
	BackupCommand []string `json:"backupCommand"`

	// fileName is the name the output has in the backup, e.g. shop.sql; the
	// backup's log and backup.json list it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.contains('/')",message="fileName must be a plain file name, without '/'"
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="fileName must not be '.' or '..'"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._-]+$')",message="fileName may hold only letters, digits, '.', '_' and '-'"
	// +required
	FileName string `json:"fileName"`

	// restoreCommand, when set, is run by a restore of the backup in a pod
	// made from this PreBackupPod (as the restore restored it) with the
	// backup's output as standard input, e.g. ["psql", "-f", "-"]. Without
	// it the output stays in the repository and the restore says so
	// (PartialSuccess).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="size(self) > 0 && size(self[0]) > 0",message="restoreCommand must name the program to run"
	// +listType=atomic
	// +optional
	RestoreCommand []string `json:"restoreCommand,omitempty"`

	// pod is the template of the pod: its labels, annotations and spec. The
	// spoke makes the pod in this namespace, with restartPolicy Never, and
	// the namespace's admission rules (Pod Security, quotas) apply to it.
	// +required
	Pod PreBackupPodTemplate `json:"pod"`

	// container is the container the commands run in; empty means the
	// pod's first container.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="container must be a container name: at most 63 lowercase letters, digits and '-'"
	// +optional
	Container string `json:"container,omitempty"`

	// readyTimeout is how long the spoke waits for the pod to be ready
	// before the item counts as failed (default 5m).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="readyTimeout must be a duration such as 90s or 5m (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('1h'))",message="readyTimeout must be between 1s and 1h"
	// +optional
	ReadyTimeout *metav1.Duration `json:"readyTimeout,omitempty"`
}

// PreBackupPodTemplate is the pod a PreBackupPod makes.
type PreBackupPodTemplate struct {
	// metadata holds the pod's labels and annotations; the spoke adds its
	// own labels (backup.lifeboat.dev/prebackuppod and the run's).
	// +optional
	Metadata PodTemplateMetadata `json:"metadata,omitempty"`

	// spec is the pod's spec.
	// +kubebuilder:validation:XValidation:rule="size(self.containers) > 0",message="pod.spec.containers must hold at least one container"
	// +required
	Spec corev1.PodSpec `json:"spec"`
}

// PodTemplateMetadata are the labels and annotations of a pod template.
type PodTemplateMetadata struct {
	// labels of the pod.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations of the pod.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PreBackupPodStatus reports the last time a backup used the PreBackupPod.
type PreBackupPodStatus struct {
	// lastBackup is the last backup that ran the PreBackupPod.
	// +optional
	LastBackup *PreBackupPodRun `json:"lastBackup,omitempty"`
}

// PreBackupPodRun is how one backup's use of a PreBackupPod went.
type PreBackupPodRun struct {
	// backupID is the backup.
	// +required
	BackupID BackupID `json:"backupID"`

	// time is when the run ended.
	// +required
	Time metav1.Time `json:"time"`

	// outcome is Succeeded or Failed.
	// +required
	Outcome ExecOutcome `json:"outcome"`

	// bytes is the size of the output that went into the backup.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`

	// message says, for a failed run, why.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// PreBackupPod is K8up's third way of backing up application data: a pod
// that each backup of its namespace starts from the template, runs
// backupCommand in (its standard output is the backup, e.g. a pg_dump or
// mysqldump) and deletes afterwards, whatever the outcome. A team creates
// it in its own namespace; the spoke's admission policy admits it only from
// a user who may create pods and exec into them there.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=pbp,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="File",type=string,JSONPath=".spec.fileName"
// +kubebuilder:printcolumn:name="Last backup",type=string,JSONPath=".status.lastBackup.backupID"
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=".status.lastBackup.outcome"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a PreBackupPod's name must be at most 63 characters: it labels the pods made from it"
type PreBackupPod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the pod template and the commands.
	// +required
	Spec PreBackupPodSpec `json:"spec"`

	// status reports the last backup that used it.
	// +optional
	Status PreBackupPodStatus `json:"status,omitempty"`
}

// ReadyWait is how long the spoke waits for the pod to be ready.
func (p *PreBackupPod) ReadyWait() time.Duration {
	if t := p.Spec.ReadyTimeout; t != nil && t.Duration > 0 {
		return t.Duration
	}
	return DefaultReadyTimeout
}

// ContainerName is the container the commands run in.
func (p *PreBackupPod) ContainerName() string {
	if p.Spec.Container != "" || len(p.Spec.Pod.Spec.Containers) == 0 {
		return p.Spec.Container
	}
	return p.Spec.Pod.Spec.Containers[0].Name
}

// PreBackupPodList is a list of PreBackupPods.
// +kubebuilder:object:root=true
type PreBackupPodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the PreBackupPods.
	Items []PreBackupPod `json:"items"`
}
