package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ApplicationBackupPhase is where a backup run on a spoke stands.
// +kubebuilder:validation:Enum=Pending;InProgress;Success;PartialSuccess;Failed;Aborted
type ApplicationBackupPhase string

// Application backup phases.
const (
	ApplicationBackupPending    ApplicationBackupPhase = "Pending"
	ApplicationBackupInProgress ApplicationBackupPhase = "InProgress"
	// ApplicationBackupSuccess: every selected item is in the bucket and backup.json is written.
	ApplicationBackupSuccess ApplicationBackupPhase = "Success"
	// ApplicationBackupPartialSuccess: backup.json is written, but some items
	// could not be backed up; status.errors counts them and the log names them.
	ApplicationBackupPartialSuccess ApplicationBackupPhase = "PartialSuccess"
	ApplicationBackupFailed         ApplicationBackupPhase = "Failed"
	// ApplicationBackupAborted: the run stopped before it finished, e.g. the
	// object was deleted or the spoke restarted mid-run; backup.json is not written.
	ApplicationBackupAborted ApplicationBackupPhase = "Aborted"
)

// BackupStage is the step a backup run is in, in this order.
// +kubebuilder:validation:Enum=Initial;PreExecRule;Resources;Volumes;PostExecRule;Final
type BackupStage string

// Backup stages.
const (
	StageInitial      BackupStage = "Initial"
	StagePreExecRule  BackupStage = "PreExecRule"
	StageResources    BackupStage = "Resources"
	StageVolumes      BackupStage = "Volumes"
	StagePostExecRule BackupStage = "PostExecRule"
	StageFinal        BackupStage = "Final"
)

// Progress counts the work of a backup or restore so far.
type Progress struct {
	// itemsTotal is the number of items selected.
	// +optional
	ItemsTotal int64 `json:"itemsTotal,omitempty"`

	// itemsDone is the number of items handled so far, with or without errors.
	// +optional
	ItemsDone int64 `json:"itemsDone,omitempty"`

	// bytesDone is the number of bytes written to (or read from) the bucket so far.
	// +optional
	BytesDone int64 `json:"bytesDone,omitempty"`
}

// BackupResult is what a backup run has produced so far. The hub's Backup status
// carries the same fields, fed back from the spoke.
type BackupResult struct {
	// backupID is the folder of this backup in the bucket, under its source cluster.
	// +optional
	BackupID BackupID `json:"backupID,omitempty"`

	// manifestSHA256 is the sha256 of the backup.json this run wrote, set when
	// the backup is committed. The hub keeps it and sends it with every restore
	// and deletion of the backup, which refuse a backup.json that differs.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ManifestSHA256 string `json:"manifestSHA256,omitempty"`

	// stage is the step the run is in, or the last one it reached.
	// +optional
	Stage BackupStage `json:"stage,omitempty"`

	// progress counts items and bytes.
	// +optional
	Progress *Progress `json:"progress,omitempty"`

	// startTime is when the run started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the run ended, whatever the outcome.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// expiration is when the backup is due for deletion (startTime + ttl).
	// +optional
	Expiration *metav1.Time `json:"expiration,omitempty"`

	// warnings is the number of warnings in the backup's log.
	// +optional
	Warnings int32 `json:"warnings,omitempty"`

	// errors is the number of items that could not be backed up.
	// +optional
	Errors int32 `json:"errors,omitempty"`
}

// VolumePolicy says what a backup does with the data in the
// PersistentVolumeClaims it takes.
// +kubebuilder:validation:Enum=Data;Skip
type VolumePolicy string

// Volume policies.
const (
	// VolumesData backs up the files in each bound PersistentVolumeClaim
	// (where the cluster has a volume data mover).
	VolumesData VolumePolicy = "Data"
	// VolumesSkip backs up PersistentVolumeClaims and PersistentVolumes as
	// objects only; the backup ends PartialSuccess naming each claim.
	VolumesSkip VolumePolicy = "Skip"
)

// ApplicationBackupSpec is what to back up, and where to.
// +kubebuilder:validation:XValidation:rule="self.target == oldSelf.target",message="target is immutable; create a new ApplicationBackup",fieldPath=".target"
// +kubebuilder:validation:XValidation:rule="has(self.backupID) == has(oldSelf.backupID) && (!has(self.backupID) || self.backupID == oldSelf.backupID)",message="backupID is immutable; create a new ApplicationBackup",fieldPath=".backupID"
// +kubebuilder:validation:XValidation:rule="has(self.selection) == has(oldSelf.selection) && (!has(self.selection) || self.selection == oldSelf.selection)",message="selection is immutable; create a new ApplicationBackup",fieldPath=".selection"
// +kubebuilder:validation:XValidation:rule="has(self.hooks) == has(oldSelf.hooks) && (!has(self.hooks) || self.hooks == oldSelf.hooks)",message="hooks are immutable; create a new ApplicationBackup",fieldPath=".hooks"
// +kubebuilder:validation:XValidation:rule="has(self.volumes) == has(oldSelf.volumes) && (!has(self.volumes) || self.volumes == oldSelf.volumes)",message="volumes is immutable; create a new ApplicationBackup",fieldPath=".volumes"
type ApplicationBackupSpec struct {
	// target is the BackupTarget to write to. Outside lifeboat-system the target's
	// allowedNamespaces must select this object's namespace.
	// +required
	Target ObjectName `json:"target"`

	// backupID is the backup's folder in the bucket; the hub sets it. Empty means
	// the object's UID.
	// +optional
	BackupID BackupID `json:"backupID,omitempty"`

	// selection chooses the resources. Outside lifeboat-system a backup takes only
	// its own namespace and no cluster-scoped resources, whatever this says.
	// +optional
	Selection *ResourceSelection `json:"selection,omitempty"`

	// hooks are the exec actions to run before and after the resources are read.
	// +optional
	Hooks *ExecHooks `json:"hooks,omitempty"`

	// volumes says what the backup does with the data in the bound
	// PersistentVolumeClaims it takes: Data backs up their files, Skip
	// backs them up as objects only. Either way, a claim whose data is not
	// backed up is named in the backup's log and the backup ends
	// PartialSuccess.
	// +kubebuilder:default=Data
	// +optional
	Volumes VolumePolicy `json:"volumes,omitempty"`

	// ttl is how long to keep the backup; unset keeps it until it is deleted.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="ttl must be a duration such as 720h or 90m (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('87600h'))",message="ttl must be between 1h and 87600h (10 years)"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// hub identifies the hub Backup this run carries out; it is written into
	// backup.json. Unset for a team's own backup.
	// +optional
	Hub *HubObjectReference `json:"hub,omitempty"`

	// tenancy, set by the hub for a hub tenant, is what that tenant may do on
	// this cluster; the spoke refuses anything outside it. Unset, the object
	// is held to no grant in lifeboat-system (a fleet admin's or the
	// cluster admin's) and to its own namespace elsewhere.
	// +optional
	Tenancy *Tenancy `json:"tenancy,omitempty"`
}

// ApplicationBackupStatus is the progress and outcome of the run.
type ApplicationBackupStatus struct {
	// conditions: Ready, and Completed once the run has ended.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the run stands.
	// +optional
	Phase ApplicationBackupPhase `json:"phase,omitempty"`

	// BackupResult is what the run has produced so far.
	BackupResult `json:",inline"`

	// hooks says how each exec action of spec.hooks went.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Hooks []ExecResult `json:"hooks,omitempty"`
}

// ApplicationBackup backs up Kubernetes resources of this cluster to a BackupTarget.
// The hub creates them in lifeboat-system; a team may create one in its own
// namespace to back up that namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=abk,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=".spec.target"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=".status.stage"
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=".status.progress.itemsDone"
// +kubebuilder:printcolumn:name="Errors",type=integer,JSONPath=".status.errors",priority=1
// +kubebuilder:printcolumn:name="Backup ID",type=string,JSONPath=".status.backupID",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ApplicationBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to back up, and where to.
	// +required
	Spec ApplicationBackupSpec `json:"spec"`

	// status is the progress and outcome of the run.
	// +optional
	Status ApplicationBackupStatus `json:"status,omitempty"`
}

// ApplicationBackupList is a list of ApplicationBackups.
// +kubebuilder:object:root=true
type ApplicationBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ApplicationBackups.
	Items []ApplicationBackup `json:"items"`
}
