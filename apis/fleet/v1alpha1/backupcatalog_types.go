package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// BackupCatalogPhase is what the hub did with a catalog page.
// +kubebuilder:validation:Enum=Pending;Imported;Rejected
type BackupCatalogPhase string

// Labels of a BackupCatalog page: the hub finds a sync's pages by LabelSyncUID.
const (
	// LabelSyncUID is the UID of the hub BackupSync the page answers.
	LabelSyncUID = "fleet.lifeboat.dev/sync-uid"
	// LabelSyncName is the name of that BackupSync (hashed if too long for a label value).
	LabelSyncName = "fleet.lifeboat.dev/sync-name"
	// LabelInventory marks a cluster's namespace inventory page.
	LabelInventory = "fleet.lifeboat.dev/inventory"
)

// InventoryPageName is the name of the one inventory page in a cluster's
// namespace on the hub.
const InventoryPageName = "inventory"

// MaxInventoryNamespaces is how many namespaces an inventory page lists at
// most; a spoke with more lists the first ones by name and counts the rest
// in namespacesOmitted.
const MaxInventoryNamespaces = 5000

// Backup catalog phases.
const (
	// CatalogPending: not imported yet.
	CatalogPending BackupCatalogPhase = "Pending"
	// CatalogImported: every valid entry was imported; status.rejected counts the others.
	CatalogImported BackupCatalogPhase = "Imported"
	// CatalogRejected: the page as a whole failed the hub's checks, e.g. it names a
	// sync or location that does not exist.
	CatalogRejected BackupCatalogPhase = "Rejected"
)

// BackupSummary is one backup found in a bucket, as its backup.json describes it.
// +kubebuilder:validation:XValidation:rule="!(has(self.hub) && has(self.selfServiceNamespace))",message="an entry belongs either to a hub Backup or to a self-service namespace, not both"
type BackupSummary struct {
	// id is the backup's folder under its source cluster.
	// +required
	ID backupv1alpha1.BackupID `json:"id"`

	// sourceCluster is the cluster the backup was taken on.
	// +required
	SourceCluster backupv1alpha1.ClusterName `json:"sourceCluster"`

	// hub is the hub Backup the backup was made for.
	// +optional
	Hub *backupv1alpha1.HubObjectReference `json:"hub,omitempty"`

	// selfServiceNamespace is the namespace of the team's own ApplicationBackup
	// that made the backup.
	// +optional
	SelfServiceNamespace backupv1alpha1.NamespaceName `json:"selfServiceNamespace,omitempty"`

	// phase is how the backup ended.
	// +optional
	Phase backupv1alpha1.ApplicationBackupPhase `json:"phase,omitempty"`

	// items is the number of items in the backup.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Items int64 `json:"items,omitempty"`

	// warnings is the number of warnings in the backup's log.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Warnings int32 `json:"warnings,omitempty"`

	// errors is the number of items that could not be backed up.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Errors int32 `json:"errors,omitempty"`

	// sizeBytes is the size of all the backup's files in the bucket.
	// +kubebuilder:validation:Minimum=0
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`

	// startTime is when the backup started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the backup ended.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// expiration is when the backup is due for deletion.
	// +optional
	Expiration *metav1.Time `json:"expiration,omitempty"`

	// tombstone marks a backup that was deleted, or is to be; the hub does not
	// import it again.
	// +optional
	Tombstone bool `json:"tombstone,omitempty"`

	// selection is what backup.json records of the selection the backup
	// was made with, bounded; absent when backup.json records none.
	// +optional
	Selection *SelectionSummary `json:"selection,omitempty"`
}

// MaxSummaryNamespaces is how many namespaces a SelectionSummary lists of
// each of includedNamespaces and excludedNamespaces; namespacesOmitted
// counts the rest. It keeps a page of 500 entries well under etcd's limit.
const MaxSummaryNamespaces = 5

// SelectionSummary is a bounded account of a backup's resource selection,
// as its backup.json records it: for people to read. Nothing acts on it (a
// bucket's writer could have written it), so a synced Backup's
// spec.selection stays empty.
type SelectionSummary struct {
	// includedNamespaces are the first namespaces the selection includes (all when empty).
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	IncludedNamespaces []backupv1alpha1.NamespaceName `json:"includedNamespaces,omitempty"`

	// excludedNamespaces are the first namespaces the selection excludes.
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	ExcludedNamespaces []backupv1alpha1.NamespaceName `json:"excludedNamespaces,omitempty"`

	// namespacesOmitted counts the included and excluded namespaces beyond
	// those listed.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	NamespacesOmitted int32 `json:"namespacesOmitted,omitempty"`

	// labelSelector is true when the selection had a label selector.
	// +optional
	LabelSelector bool `json:"labelSelector,omitempty"`

	// resources is true when the selection included or excluded resources.
	// +optional
	Resources bool `json:"resources,omitempty"`

	// clusterScopedResources is the selection's policy for cluster-scoped resources.
	// +optional
	ClusterScopedResources backupv1alpha1.ClusterScopedResourcePolicy `json:"clusterScopedResources,omitempty"`
}

// Summarize is the SelectionSummary of sel; nil for nil.
func Summarize(sel *backupv1alpha1.ResourceSelection) *SelectionSummary {
	if sel == nil {
		return nil
	}
	first := func(names []backupv1alpha1.NamespaceName) []backupv1alpha1.NamespaceName {
		return names[:min(len(names), MaxSummaryNamespaces)]
	}
	out := &SelectionSummary{
		IncludedNamespaces:     append([]backupv1alpha1.NamespaceName(nil), first(sel.IncludedNamespaces)...),
		ExcludedNamespaces:     append([]backupv1alpha1.NamespaceName(nil), first(sel.ExcludedNamespaces)...),
		LabelSelector:          sel.LabelSelector != nil,
		Resources:              len(sel.IncludedResources)+len(sel.ExcludedResources) > 0,
		ClusterScopedResources: sel.ClusterScopedResources,
	}
	out.NamespacesOmitted = int32(len(sel.IncludedNamespaces) + len(sel.ExcludedNamespaces) - len(out.IncludedNamespaces) - len(out.ExcludedNamespaces))
	return out
}

// InventoryNamespaceName is a namespace name in an inventory: a DNS-1123
// label (an OpenAPI pattern rather than CEL: a page lists thousands).
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type InventoryNamespaceName string

// NamespaceInventory is the list of namespaces a spoke reports for its cluster.
type NamespaceInventory struct {
	// namespaces are the cluster's namespaces, sorted, at most 5000.
	// +kubebuilder:validation:MaxItems=5000
	// +listType=set
	// +optional
	Namespaces []InventoryNamespaceName `json:"namespaces,omitempty"`

	// namespacesOmitted counts the cluster's namespaces beyond the first 5000.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	NamespacesOmitted int32 `json:"namespacesOmitted,omitempty"`

	// observedTime is when the spoke listed the namespaces.
	// +required
	ObservedTime metav1.Time `json:"observedTime"`
}

// BackupCatalogSpec is one page of what a cluster found in a location's
// container, the cluster's namespace inventory, or a run's log.
// +kubebuilder:validation:XValidation:rule="has(self.inventory) || has(self.log) ? !has(self.sync) && !has(self.location) && !has(self.entries) && !has(self.skipped) && !(has(self.inventory) && has(self.log)) : has(self.sync) && has(self.location)",message="a page is either a sync's page (sync and location), a namespace inventory (inventory alone) or a run's log (log alone)"
type BackupCatalogSpec struct {
	// cluster is the cluster that wrote the page; it must be the cluster whose
	// namespace the page is in.
	// +required
	Cluster backupv1alpha1.ClusterName `json:"cluster"`

	// sync is the hub BackupSync the page answers (sync pages only).
	// +optional
	Sync *backupv1alpha1.HubObjectReference `json:"sync,omitempty"`

	// location is the BackupLocation that was listed (sync pages only).
	// +optional
	Location *backupv1alpha1.HubObjectReference `json:"location,omitempty"`

	// page numbers the pages of one sync from 0.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	// +optional
	Page int32 `json:"page"`

	// final marks the sync's last page.
	// +optional
	Final bool `json:"final,omitempty"`

	// entries are the backups on the page.
	// +kubebuilder:validation:MaxItems=500
	// +listType=map
	// +listMapKey=sourceCluster
	// +listMapKey=id
	// +optional
	Entries []BackupSummary `json:"entries,omitempty"`

	// inventory is the cluster's namespaces, on the page named "inventory"
	// that the spoke keeps up to date; the hub's protection report reads it.
	// +optional
	Inventory *NamespaceInventory `json:"inventory,omitempty"`

	// log is a run's log, read for a hub RunLog.
	// +optional
	Log *LogPage `json:"log,omitempty"`

	// skipped are, on the final page, folders of the container that the
	// cluster did not list as backups, each with why: an unreadable or
	// damaged backup.json, a format newer than the cluster reads, a
	// backup.json that names another folder (another source cluster or ID),
	// data it records that is gone. At most 20; skippedCount counts them all.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	Skipped []SkippedFolder `json:"skipped,omitempty"`

	// skippedCount is, on the final page, the number of folders skipped.
	// +kubebuilder:validation:Minimum=0
	// +optional
	SkippedCount int32 `json:"skippedCount,omitempty"`

	// incomplete is, on the final page, the number of folders without
	// backup.json: backups being written, or runs that never finished.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Incomplete int32 `json:"incomplete,omitempty"`
}

// SkippedFolder is a folder of a container that a sync did not list as a backup.
type SkippedFolder struct {
	// folder is the folder's path in the container.
	// +kubebuilder:validation:MaxLength=512
	// +required
	Folder string `json:"folder"`

	// reason says why it was not listed.
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Reason string `json:"reason"`
}

// BackupCatalogStatus is what the hub did with the page.
type BackupCatalogStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is what the hub did with the page.
	// +optional
	Phase BackupCatalogPhase `json:"phase,omitempty"`

	// imported is the number of entries imported.
	// +optional
	Imported int32 `json:"imported,omitempty"`

	// rejected is the number of entries that failed the hub's checks.
	// +optional
	Rejected int32 `json:"rejected,omitempty"`
}

// BackupCatalog is a page of backup summaries that a spoke found in a location's
// container during a sync. Spokes write them, each only in its own cluster
// namespace on the hub; the hub checks every entry before it imports it. Internal.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bcat,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=".spec.cluster"
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=".spec.sync.name"
// +kubebuilder:printcolumn:name="Page",type=integer,JSONPath=".spec.page"
// +kubebuilder:printcolumn:name="Final",type=boolean,JSONPath=".spec.final"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupCatalog struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is one page of what a cluster found.
	// +required
	Spec BackupCatalogSpec `json:"spec"`

	// status is what the hub did with the page.
	// +optional
	Status BackupCatalogStatus `json:"status,omitempty"`
}

// BackupCatalogList is a list of BackupCatalogs.
// +kubebuilder:object:root=true
type BackupCatalogList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupCatalogs.
	Items []BackupCatalog `json:"items"`
}
