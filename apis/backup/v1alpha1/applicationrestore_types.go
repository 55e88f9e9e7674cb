package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RestorePhase is where a restore stands; the hub's Restore uses the same phases.
// +kubebuilder:validation:Enum=Pending;InProgress;Success;PartialSuccess;Failed
type RestorePhase string

// Restore phases.
const (
	RestorePending    RestorePhase = "Pending"
	RestoreInProgress RestorePhase = "InProgress"
	RestoreSuccess    RestorePhase = "Success"
	// RestorePartialSuccess: the restore ended, but some items could not be
	// restored; status.errors counts them.
	RestorePartialSuccess RestorePhase = "PartialSuccess"
	RestoreFailed         RestorePhase = "Failed"
)

// ExistingResourcePolicy says what a restore does with a resource that already exists.
// +kubebuilder:validation:Enum=Skip;Update
type ExistingResourcePolicy string

// Existing resource policies.
const (
	// ExistingResourceSkip leaves the existing resource alone; the restore counts it as skipped.
	ExistingResourceSkip ExistingResourcePolicy = "Skip"
	// ExistingResourceUpdate applies the backed-up resource over the existing one
	// with server-side apply, taking ownership of the fields it sets.
	ExistingResourceUpdate ExistingResourcePolicy = "Update"
)

// NamespaceMapping maps namespaces in the backup (keys) to the namespaces to
// restore them into (values). Namespaces not listed keep their names.
// +kubebuilder:validation:MaxProperties=64
// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(k) <= 63)",message="namespaceMapping keys must be namespace names: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
type NamespaceMapping map[string]NamespaceName

// StorageClassMapping maps the StorageClasses of restored
// PersistentVolumeClaims (keys, as in the backup) to the StorageClasses to
// restore them with (values), e.g. {premium-lrs: managed-csi} for a
// migration. Claims of classes not listed keep their class.
// +kubebuilder:validation:MaxProperties=64
// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="storageClassMappings keys must be StorageClass names: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
type StorageClassMapping map[string]ObjectName

// RestoreOptions say what to restore and how; the hub's Restore and the spoke's
// ApplicationRestore share them.
type RestoreOptions struct {
	// namespaceMapping restores namespaces under other names, e.g. {shop: shop-copy}.
	// +optional
	NamespaceMapping NamespaceMapping `json:"namespaceMapping,omitempty"`

	// selection chooses which of the backed-up resources to restore; namespaces
	// here are the names in the backup, before mapping.
	// +optional
	Selection *ResourceSelection `json:"selection,omitempty"`

	// existingResourcePolicy says what to do with resources that already exist.
	// +kubebuilder:default=Skip
	// +optional
	ExistingResourcePolicy ExistingResourcePolicy `json:"existingResourcePolicy,omitempty"`

	// storageClassMappings gives restored PersistentVolumeClaims another
	// StorageClass, e.g. {premium-lrs: managed-csi}.
	// +optional
	StorageClassMappings StorageClassMapping `json:"storageClassMappings,omitempty"`
}

// RestoreResult is what a restore has done so far. The hub's Restore status
// carries the same fields, fed back from the spoke.
type RestoreResult struct {
	// progress counts items and bytes.
	// +optional
	Progress *Progress `json:"progress,omitempty"`

	// startTime is when the restore started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the restore ended, whatever the outcome.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// warnings is the number of warnings, e.g. existing resources skipped.
	// +optional
	Warnings int32 `json:"warnings,omitempty"`

	// errors is the number of items that could not be restored.
	// +optional
	Errors int32 `json:"errors,omitempty"`
}

// BackupSource identifies a backup in a target's bucket.
type BackupSource struct {
	// cluster is the cluster the backup was taken on (its folder in the bucket).
	// +required
	Cluster ClusterName `json:"cluster"`

	// backupID is the backup's folder under its cluster.
	// +required
	BackupID BackupID `json:"backupID"`

	// manifestSHA256 is the sha256 of the backup's backup.json as its source
	// cluster wrote it; the hub sets it from the Backup's status. When set, the
	// spoke refuses a backup whose backup.json differs (reason BackupCorrupt)
	// before it writes or deletes anything: another cluster with write access
	// to the container cannot forge it.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{64}$')",message="manifestSHA256 must be 64 lowercase hex digits"
	// +optional
	ManifestSHA256 string `json:"manifestSHA256,omitempty"`
}

// ApplicationRestoreSpec is what to restore, from where, and how.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new ApplicationRestore"
type ApplicationRestoreSpec struct {
	// target is the BackupTarget to read from. Outside lifeboat-system the
	// target's allowedNamespaces must select this object's namespace.
	// +required
	Target ObjectName `json:"target"`

	// source is the backup to restore.
	// +required
	Source BackupSource `json:"source"`

	// RestoreOptions say what to restore and how.
	RestoreOptions `json:",inline"`

	// hub identifies the hub Restore this carries out; unset for a team's own restore.
	// +optional
	Hub *HubObjectReference `json:"hub,omitempty"`

	// tenancy, set by the hub for a hub tenant, is what that tenant may do on
	// this cluster; the spoke refuses anything outside it. Unset, the object
	// is held to no grant in lifeboat-system (a fleet admin's or the
	// cluster admin's) and to its own namespace elsewhere.
	// +optional
	Tenancy *Tenancy `json:"tenancy,omitempty"`

	// requestedBy is who asked for a team's restore (outside lifeboat-system):
	// the restore writes as this user, with these groups. The spoke chart's
	// ValidatingAdmissionPolicy admits a team's ApplicationRestore only when
	// username is the creator's and every group is one of the creator's, and
	// the spoke refuses a team's restore without it.
	// +optional
	RequestedBy *Requester `json:"requestedBy,omitempty"`
}

// Requester is a user as the API server authenticated them.
type Requester struct {
	// username is the user's name, e.g. jane@example.com or
	// system:serviceaccount:shop:deployer (kubectl auth whoami shows it).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Username string `json:"username"`

	// groups are groups of the user whose rights the restore may use; leave
	// out those that do not matter.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=set
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// ApplicationRestoreStatus is the progress and outcome of the restore.
type ApplicationRestoreStatus struct {
	// conditions: Ready, and Completed once the restore has ended.
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
	Phase RestorePhase `json:"phase,omitempty"`

	// RestoreResult is what the restore has done so far.
	RestoreResult `json:",inline"`

	// items counts what the restore did with the items of the backup; once
	// it ended they add up to progress.itemsTotal. The restore's log names
	// each item with its result and the reason.
	// +optional
	Items *RestoreItemCounts `json:"items,omitempty"`

	// log is where the restore's log is kept: the path of a blob in the
	// BackupTarget's container, beside the backup's own log. One JSON line
	// per item (its result: created, updated, existed, leftOut or failed,
	// with the reason) and per warning or error; see docs/backup-format.md.
	// Empty until the restore ended, and when it could not be written (the
	// Ready message then says why).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Log string `json:"log,omitempty"`
}

// RestoreItemCounts counts the items of a backup by what a restore did with them.
type RestoreItemCounts struct {
	// created items did not exist and were created.
	// +optional
	Created int64 `json:"created,omitempty"`
	// updated items existed and were updated (existingResourcePolicy Update).
	// +optional
	Updated int64 `json:"updated,omitempty"`
	// existed items existed and were left as they are (existingResourcePolicy
	// Skip), each with a warning in the log.
	// +optional
	Existed int64 `json:"existed,omitempty"`
	// leftOut items were not written: not selected, not allowed, or made
	// again by the cluster itself; the log says why for each.
	// +optional
	LeftOut int64 `json:"leftOut,omitempty"`
	// failed items could not be restored; the log says why for each.
	// +optional
	Failed int64 `json:"failed,omitempty"`
}

// ApplicationRestore restores resources from a backup in a BackupTarget into this
// cluster. The hub creates them in lifeboat-system; a team may create one in its
// own namespace to restore into that namespace only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=arst,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=".spec.target"
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=".spec.source.cluster"
// +kubebuilder:printcolumn:name="Backup ID",type=string,JSONPath=".spec.source.backupID"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=".status.progress.itemsDone",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ApplicationRestore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what to restore, from where, and how.
	// +required
	Spec ApplicationRestoreSpec `json:"spec"`

	// status is the progress and outcome of the restore.
	// +optional
	Status ApplicationRestoreStatus `json:"status,omitempty"`
}

// ApplicationRestoreList is a list of ApplicationRestores.
// +kubebuilder:object:root=true
type ApplicationRestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ApplicationRestores.
	Items []ApplicationRestore `json:"items"`
}
