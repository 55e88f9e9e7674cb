package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// ClusterDiscoveryPhase is how the latest discovery run went.
// +kubebuilder:validation:Enum=Pending;Ready;Degraded;Failed
type ClusterDiscoveryPhase string

// Cluster discovery phases.
const (
	// DiscoveryPending: no run has finished yet.
	DiscoveryPending ClusterDiscoveryPhase = "Pending"
	// DiscoveryReady: the latest run onboarded every selected shoot.
	DiscoveryReady ClusterDiscoveryPhase = "Ready"
	// DiscoveryDegraded: the latest run listed the shoots, but some failed to onboard.
	DiscoveryDegraded ClusterDiscoveryPhase = "Degraded"
	// DiscoveryFailed: the latest run could not list shoots.
	DiscoveryFailed ClusterDiscoveryPhase = "Failed"
)

// SecretKeyReference names one key of a Secret on the hub.
type SecretKeyReference struct {
	// namespace of the Secret.
	// +required
	Namespace backupv1alpha1.NamespaceName `json:"namespace"`

	// name of the Secret.
	// +required
	Name backupv1alpha1.ObjectName `json:"name"`

	// key in the Secret's data.
	// +kubebuilder:default=kubeconfig
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must be a Secret key: letters, digits, '-', '_' and '.'"
	// +optional
	Key string `json:"key,omitempty"`
}

// GardenerSource is a Gardener landscape to discover shoots in.
type GardenerSource struct {
	// kubeconfigSecretRef is a kubeconfig for the garden cluster, allowed to list
	// and watch Shoots in the projects below.
	// +required
	KubeconfigSecretRef SecretKeyReference `json:"kubeconfigSecretRef"`

	// projects are the Gardener projects to look in (namespaces garden-<project>);
	// empty means every project the kubeconfig can see.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="project names are lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +listType=set
	// +optional
	Projects []string `json:"projects,omitempty"`

	// shootSelector selects the shoots to onboard by their labels; unset selects all.
	// +optional
	ShootSelector *metav1.LabelSelector `json:"shootSelector,omitempty"`
}

// ClusterDiscoverySpec says where to find clusters and how often to look.
type ClusterDiscoverySpec struct {
	// gardener is the landscape to discover shoots in.
	// +required
	Gardener GardenerSource `json:"gardener"`

	// interval is how often discovery lists all shoots again. It also watches
	// them, so new shoots are onboarded within seconds; the interval catches
	// what a watch missed.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="interval must be a duration such as 10m or 1h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="interval must be between 1m and 24h"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// onboardingLabel is the label key that discovery sets, with this
	// ClusterDiscovery's name as value, on every BackupCluster and ManagedCluster
	// it onboards, so that selectors and OCM placements can pick its clusters.
	// +kubebuilder:default="fleet.lifeboat.dev/discovery"
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')",message="onboardingLabel must be a label key such as example.com/discovered-by: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.'"
	// +optional
	OnboardingLabel string `json:"onboardingLabel,omitempty"`

	// clusterSet puts every cluster this discovery onboards into the OCM
	// ManagedClusterSet of that name: discovery sets the label
	// cluster.open-cluster-management.io/clusterset to it on the
	// ManagedCluster and the BackupCluster. The set itself (with selectorType
	// ExclusiveClusterSetLabel, OCM's default) and its bindings are the fleet
	// admin's to create. Unset, discovery leaves that label alone.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="clusterSet must be a ManagedClusterSet name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +optional
	ClusterSet string `json:"clusterSet,omitempty"`
}

// DiscoveryCounts count the shoots of a discovery run.
type DiscoveryCounts struct {
	// current is the number of clusters this discovery manages now.
	// +optional
	Current int32 `json:"current,omitempty"`

	// discovered is the number of clusters onboarded for the first time in the run.
	// +optional
	Discovered int32 `json:"discovered,omitempty"`

	// unmanaged is the number of clusters that became unmanaged in the run: their
	// shoot is gone or no longer selected. Their BackupCluster and backups stay.
	// +optional
	Unmanaged int32 `json:"unmanaged,omitempty"`

	// remanaged is the number of unmanaged clusters that came back in the run.
	// +optional
	Remanaged int32 `json:"remanaged,omitempty"`

	// skipped is the number of selected shoots not onboarded on purpose, e.g.
	// hibernated, being deleted, or not yet created.
	// +optional
	Skipped int32 `json:"skipped,omitempty"`

	// failed is the number of selected shoots whose onboarding failed.
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// ClusterDiscoveryStatus is the outcome of the latest discovery run.
type ClusterDiscoveryStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is how the latest run went.
	// +optional
	Phase ClusterDiscoveryPhase `json:"phase,omitempty"`

	// lastRunTime is when the latest run ended.
	// +optional
	LastRunTime *metav1.Time `json:"lastRunTime,omitempty"`

	// lastSuccessfulRunTime is when the latest run that could list shoots ended.
	// +optional
	LastSuccessfulRunTime *metav1.Time `json:"lastSuccessfulRunTime,omitempty"`

	// counts are the latest run's numbers.
	// +optional
	Counts *DiscoveryCounts `json:"counts,omitempty"`
}

// ClusterDiscovery finds the clusters to back up: it keeps a BackupCluster, and
// an OCM ManagedCluster, for every selected Gardener shoot.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cdisc,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=".status.counts.current"
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=".status.counts.failed"
// +kubebuilder:printcolumn:name="Last Run",type=date,JSONPath=".status.lastRunTime"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ClusterDiscovery struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where to find clusters and how often to look.
	// +required
	Spec ClusterDiscoverySpec `json:"spec"`

	// status is the outcome of the latest run.
	// +optional
	Status ClusterDiscoveryStatus `json:"status,omitempty"`
}

// ClusterDiscoveryList is a list of ClusterDiscoveries.
// +kubebuilder:object:root=true
type ClusterDiscoveryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ClusterDiscoveries.
	Items []ClusterDiscovery `json:"items"`
}
