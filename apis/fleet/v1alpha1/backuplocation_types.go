package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// BackupLocationPhase sums up a location's connections over its selected clusters.
// +kubebuilder:validation:Enum=ValidationInProgress;Valid;LimitedAvailability;Invalid
type BackupLocationPhase string

// Backup location phases.
const (
	// LocationValidationInProgress: no selected cluster is Valid yet, and some
	// have not finished validating.
	LocationValidationInProgress BackupLocationPhase = "ValidationInProgress"
	// LocationValid: every selected cluster is Valid.
	LocationValid BackupLocationPhase = "Valid"
	// LocationLimitedAvailability: some selected clusters are Valid, others not.
	LocationLimitedAvailability BackupLocationPhase = "LimitedAvailability"
	// LocationInvalid: no selected cluster is Valid, or no cluster is selected.
	LocationInvalid BackupLocationPhase = "Invalid"
)

// BackupLocationSpec is an Azure Blob container and the clusters that may use it.
// +kubebuilder:validation:XValidation:rule="has(self.clusters) || has(self.clusterSelector) || has(self.placementRef)",message="set clusters, clusterSelector or placementRef: a location must say which clusters may use it"
// +kubebuilder:validation:XValidation:rule="!(has(self.clusterSelector) && has(self.placementRef))",message="set clusterSelector or placementRef, not both: the Placement already selects clusters by their labels"
type BackupLocationSpec struct {
	// StorageTarget is where the backups are and how the cluster reaches them.
	backupv1alpha1.StorageTarget `json:",inline"`

	// clusters names clusters that may use the location.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +listType=set
	// +optional
	Clusters []backupv1alpha1.ClusterName `json:"clusters,omitempty"`

	// clusterSelector selects, by their labels, BackupClusters that may use the
	// location, in addition to those in clusters. An empty selector selects all.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// placementRef names an OCM Placement in the location's namespace: the
	// clusters it decides for may use the location, in addition to those in
	// clusters. Clusters the Placement decides for later are covered too.
	// +optional
	PlacementRef *PlacementRef `json:"placementRef,omitempty"`

	// identities give groups of the selected clusters their own Entra ID
	// identity instead of spec.identity, so that one location can cover more
	// clusters than one identity has federated credentials for (20 in Entra
	// ID). A cluster uses the identity of the first entry that names or
	// selects it, and spec.identity when none does.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Identities []ClusterIdentity `json:"identities,omitempty"`

	// syncInterval is how often to import what the container holds (see
	// BackupSync); unset means only when a BackupSync is created by hand.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="syncInterval must be a duration such as 30m or 6h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('5m') && duration(self) <= duration('168h'))",message="syncInterval must be between 5m and 168h"
	// +optional
	SyncInterval *metav1.Duration `json:"syncInterval,omitempty"`
}

// ClusterIdentity is the identity that some of a location's clusters use.
// +kubebuilder:validation:XValidation:rule="has(self.clusters) || has(self.clusterSelector)",message="set clusters, clusterSelector or both: an identity entry must say which clusters use it"
type ClusterIdentity struct {
	// clusters names clusters that use this identity: at most 20, the number
	// of federated credentials an Entra ID identity may have.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=set
	// +optional
	Clusters []backupv1alpha1.ClusterName `json:"clusters,omitempty"`

	// clusterSelector selects, by their labels, BackupClusters that use this
	// identity, in addition to those in clusters. An empty selector selects all.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// identity is the Entra ID application these clusters sign in as.
	// +required
	Identity backupv1alpha1.AzureWorkloadIdentity `json:"identity"`
}

// ClusterConnection is one cluster's connection to the location, as the
// cluster's BackupTarget reports it.
type ClusterConnection struct {
	// cluster is the cluster's name.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Cluster string `json:"cluster"`

	// clientID is the identity the cluster uses for the location: from the
	// first spec.identities entry that matches it, else spec.identity.
	// +kubebuilder:validation:MaxLength=36
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// ValidationState is the outcome of the latest validation.
	backupv1alpha1.ValidationState `json:",inline"`
}

// MaxLocationClusters is how many clusters a BackupLocation can serve: one
// BackupTarget ManifestWork each, all sent by one reconcile.
const MaxLocationClusters = 5000

// MaxNotValidClusters is how many connections that are not Valid a
// BackupLocation's status lists (status.notValid).
const MaxNotValidClusters = 100

// MaxTombstones is how many tombstones a BackupLocation's status holds.
const MaxTombstones = 1000

// Tombstone is a backup whose hub record was force-deleted while no cluster
// could reach the location. A sync does not import it again, and its data is
// deleted as soon as a cluster has a Valid connection.
type Tombstone struct {
	// sourceCluster is the cluster the backup was taken on.
	// +kubebuilder:validation:MaxLength=63
	// +required
	SourceCluster string `json:"sourceCluster"`

	// backupID is the backup's folder under its source cluster.
	// +kubebuilder:validation:MaxLength=128
	// +required
	BackupID string `json:"backupID"`

	// backup is the name of the force-deleted Backup, in the location's namespace.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Backup string `json:"backup,omitempty"`

	// backupUID is the UID of the force-deleted Backup.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=36
	// +optional
	BackupUID types.UID `json:"backupUID,omitempty"`

	// deletionTime is when the hub record was force-deleted.
	// +optional
	DeletionTime *metav1.Time `json:"deletionTime,omitempty"`
}

// BackupLocationStatus is how the location looks from each selected cluster.
type BackupLocationStatus struct {
	// conditions: Validated and Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase sums up the connections of the selected clusters.
	// +optional
	Phase BackupLocationPhase `json:"phase,omitempty"`

	// federatedSubject is the subject the location's BackupTarget signs in to
	// Entra ID as on every cluster (a ServiceAccount of its own in
	// lifeboat-system): each identity of the location needs a federated
	// credential for this subject and the issuer of each cluster it serves.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	FederatedSubject string `json:"federatedSubject,omitempty"`

	// selectedClusters is the number of clusters selected.
	// +optional
	SelectedClusters int32 `json:"selectedClusters,omitempty"`

	// validClusters is the number of selected clusters with a Valid connection.
	// +optional
	ValidClusters int32 `json:"validClusters,omitempty"`

	// pendingClusters is the number of selected clusters that have not
	// reported on the location's current spec yet (Pending or InProgress).
	// +optional
	PendingClusters int32 `json:"pendingClusters,omitempty"`

	// invalidClusters is the number of selected clusters whose connection is
	// Invalid or Failed, including those the namespace may not use.
	// +optional
	InvalidClusters int32 `json:"invalidClusters,omitempty"`

	// notValid are connections that are not Valid, at most
	// MaxNotValidClusters: the Invalid and Failed ones first, then the
	// Pending ones, each group by cluster name. Every cluster's own
	// connection is its BackupTarget ManifestWork's status feedback, in the
	// cluster's namespace, and shows in its BackupCluster's status.locations.
	// +listType=map
	// +listMapKey=cluster
	// +kubebuilder:validation:MaxItems=100
	// +optional
	NotValid []ClusterConnection `json:"notValid,omitempty"`

	// notValidOmitted is how many connections that are not Valid notValid
	// leaves out.
	// +optional
	NotValidOmitted int32 `json:"notValidOmitted,omitempty"`

	// lastSyncTime is when a sync of this location last completed.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// tombstones are force-deleted backups whose data is still to be purged,
	// at most 1000: a backup force-deleted beyond that gets no tombstone.
	// +listType=map
	// +listMapKey=sourceCluster
	// +listMapKey=backupID
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Tombstones []Tombstone `json:"tombstones,omitempty"`
}

// BackupLocation is an Azure Blob container that backups of selected clusters go
// to. Each cluster reaches it with its own Workload Identity; the hub never holds
// storage credentials. It is validated on every selected cluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bloc,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=".spec.azure.storageAccount"
// +kubebuilder:printcolumn:name="Container",type=string,JSONPath=".spec.azure.container"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Valid",type=integer,JSONPath=".status.validClusters"
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=".status.selectedClusters"
// +kubebuilder:printcolumn:name="Invalid",type=integer,JSONPath=".status.invalidClusters",priority=1
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=".status.pendingClusters",priority=1
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=".spec.azure.prefix",priority=1
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=".status.federatedSubject",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupLocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the container and the clusters that may use it.
	// +required
	Spec BackupLocationSpec `json:"spec"`

	// status is how the location looks from each selected cluster.
	// +optional
	Status BackupLocationStatus `json:"status,omitempty"`
}

// BackupLocationList is a list of BackupLocations.
// +kubebuilder:object:root=true
type BackupLocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupLocations.
	Items []BackupLocation `json:"items"`
}
