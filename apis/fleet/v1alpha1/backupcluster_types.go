package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// BackupClusterPhase is the state of a cluster in the fleet.
// +kubebuilder:validation:Enum=Pending;Online;Offline;Unmanaged
type BackupClusterPhase string

// Backup cluster phases.
const (
	// ClusterPending: registered, but its work agent has not reported yet.
	ClusterPending BackupClusterPhase = "Pending"
	// ClusterOnline: its work agent reported recently.
	ClusterOnline BackupClusterPhase = "Online"
	// ClusterOffline: its work agent has not reported for a while.
	ClusterOffline BackupClusterPhase = "Offline"
	// ClusterUnmanaged: spec.managed is false; nothing is sent to the cluster.
	ClusterUnmanaged BackupClusterPhase = "Unmanaged"
)

// ShootInfo describes the Gardener shoot behind a cluster, as discovery last saw it.
// The shoot's labels are copied to the BackupCluster's own labels, so cluster
// selectors can use them.
type ShootInfo struct {
	// project is the Gardener project of the shoot.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Project string `json:"project"`

	// name is the shoot's name in its project.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// seed is the seed cluster that hosts the shoot's control plane.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Seed string `json:"seed,omitempty"`

	// provider is the shoot's infrastructure provider type, e.g. azure.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Provider string `json:"provider,omitempty"`

	// region is the shoot's region, e.g. westeurope.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Region string `json:"region,omitempty"`
}

// BackupClusterSpec describes a cluster of the fleet.
type BackupClusterSpec struct {
	// shoot describes the Gardener shoot behind the cluster; unset for a cluster
	// registered by hand.
	// +optional
	Shoot *ShootInfo `json:"shoot,omitempty"`

	// managed says whether Lifeboat sends work to the cluster. Discovery sets it
	// to false when the shoot is gone or no longer selected, and back to true when
	// it returns; the BackupCluster and its backups stay either way.
	// +kubebuilder:default=true
	// +optional
	Managed bool `json:"managed"`

	// discoveredBy are the ClusterDiscoveries that found this cluster.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	DiscoveredBy []backupv1alpha1.ObjectName `json:"discoveredBy,omitempty"`
}

// MaxStatusLocations is how many LocationConnections a BackupCluster's status
// lists: the first by namespace and name. locationsOmitted counts the rest,
// so that tenants' locations cannot grow this fleet-level object without bound.
const MaxStatusLocations = 100

// MaxConnectionMessage is the longest message of a LocationConnection, in
// characters; the hub shortens longer ones, and those a cluster feeds back
// for a BackupLocation's status.clusters too.
const MaxConnectionMessage = 1024

// LocationConnection is this cluster's connection to one BackupLocation: the
// reverse of the location's per-cluster list. Names in status lists are plain
// strings: the hub writes them.
// +kubebuilder:validation:XValidation:rule="!has(self.message) || size(self.message) <= 1024",message="message must be at most 1024 characters"
type LocationConnection struct {
	// namespace of the BackupLocation.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`

	// name of the BackupLocation.
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// ValidationState is the outcome of the latest validation.
	backupv1alpha1.ValidationState `json:",inline"`
}

// BackupClusterStatus is what the hub knows about the cluster's health.
type BackupClusterStatus struct {
	// conditions: Registered, Available and Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is the state of the cluster.
	// +optional
	Phase BackupClusterPhase `json:"phase,omitempty"`

	// locations are the cluster's connections to the BackupLocations it may
	// use: the first 100 by namespace and name (locationsOmitted counts the rest).
	// A location the cluster has not reported on yet is listed once it
	// reports (the location's status counts it as pending meanwhile); a
	// listed one is kept up to date, Pending again included.
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Locations []LocationConnection `json:"locations,omitempty"`

	// locationsOmitted is how many of the cluster's connections to
	// BackupLocations are beyond the first 100 and not in locations; each
	// location's own status lists them.
	// +kubebuilder:validation:Minimum=0
	// +optional
	LocationsOmitted int32 `json:"locationsOmitted,omitempty"`

	// protection is how well the cluster's namespaces are protected, from
	// the namespace inventory its spoke reports (see docs/operations.md).
	// +optional
	Protection *ProtectionReport `json:"protection,omitempty"`
}

// ProtectionVerdict says whether a namespace of a cluster is protected.
// +kubebuilder:validation:Enum=Protected;AtRisk;Unprotected
type ProtectionVerdict string

// Protection verdicts.
const (
	// Protected: a BackupSchedule covers the namespace and its newest
	// successful backup started within the schedule's RPO.
	Protected ProtectionVerdict = "Protected"
	// AtRisk: a BackupSchedule covers the namespace, but it has no successful
	// backup, or the newest started longer ago than the RPO.
	AtRisk ProtectionVerdict = "AtRisk"
	// Unprotected: no BackupSchedule covers the namespace.
	Unprotected ProtectionVerdict = "Unprotected"
)

// MaxProtectionNamespaces is how many namespaces a protection report names.
const MaxProtectionNamespaces = 100

// NamespaceProtection is the verdict on one namespace of a cluster.
type NamespaceProtection struct {
	// namespace on the cluster.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`

	// verdict on the namespace.
	// +required
	Verdict ProtectionVerdict `json:"verdict"`

	// lastSuccessfulBackup is the newest restorable Backup (namespace/name)
	// that took the whole namespace.
	// +kubebuilder:validation:MaxLength=320
	// +optional
	LastSuccessfulBackup string `json:"lastSuccessfulBackup,omitempty"`

	// lastSuccessfulTime is when that Backup started.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`

	// rpo is the recovery point objective of the schedules covering the
	// namespace: the shortest of their RPOs.
	// +optional
	RPO *metav1.Duration `json:"rpo,omitempty"`

	// schedule is the covering BackupSchedule (namespace/name) whose RPO that is.
	// +kubebuilder:validation:MaxLength=320
	// +optional
	Schedule string `json:"schedule,omitempty"`
}

// ProtectionReport counts the verdicts on a cluster's namespaces and names
// the namespaces that are not Protected (the first 100: AtRisk before
// Unprotected, each by name).
type ProtectionReport struct {
	// inventoryTime is when the spoke listed the cluster's namespaces.
	// +optional
	InventoryTime *metav1.Time `json:"inventoryTime,omitempty"`

	// namespaces is how many namespaces the verdicts cover.
	// +optional
	Namespaces int32 `json:"namespaces"`

	// namespacesOmitted is how many namespaces the spoke did not list (beyond
	// its inventory's bound); they have no verdict.
	// +optional
	NamespacesOmitted int32 `json:"namespacesOmitted,omitempty"`

	// protected, atRisk and unprotected count the verdicts.
	// +optional
	Protected int32 `json:"protected"`
	// +optional
	AtRisk int32 `json:"atRisk"`
	// +optional
	Unprotected int32 `json:"unprotected"`

	// notProtected are the first 100 namespaces that are not Protected.
	// +listType=map
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=100
	// +optional
	NotProtected []NamespaceProtection `json:"notProtected,omitempty"`

	// reason is why there are no verdicts, when there are none: NoInventory
	// (the spoke reported none yet) or InventoryRejected (its page failed the
	// hub's checks); message says more.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// BackupCluster is one cluster of the fleet, named like its OCM ManagedCluster.
// Discovery keeps one per selected shoot.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bcl,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a BackupCluster's name is also a namespace name: at most 63 lowercase letters, digits and '-'"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=".spec.shoot.project"
// +kubebuilder:printcolumn:name="Shoot",type=string,JSONPath=".spec.shoot.name"
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=".spec.shoot.region"
// +kubebuilder:printcolumn:name="Managed",type=boolean,JSONPath=".spec.managed"
// +kubebuilder:printcolumn:name="Add-on",type=string,JSONPath=".status.conditions[?(@.type=='Available')].reason",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the cluster.
	// +required
	Spec BackupClusterSpec `json:"spec"`

	// status is the cluster's health and its connections to locations.
	// +optional
	Status BackupClusterStatus `json:"status,omitempty"`
}

// BackupClusterList is a list of BackupClusters.
// +kubebuilder:object:root=true
type BackupClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupClusters.
	Items []BackupCluster `json:"items"`
}
