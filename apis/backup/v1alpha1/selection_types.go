package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GroupResource is a Kubernetes resource, optionally qualified by its API group:
// configmaps, deployments.apps, certificates.cert-manager.io.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a resource such as configmaps or deployments.apps: the lowercase plural resource name, optionally followed by '.' and its API group"
type GroupResource string

// ClusterScopedResourcePolicy says which cluster-scoped resources a backup or restore takes.
// +kubebuilder:validation:Enum=Auto;Include;Exclude
type ClusterScopedResourcePolicy string

// Cluster-scoped resource policies.
const (
	// ClusterScopedAuto takes the cluster-scoped resources that the selected
	// namespaced ones need: their CustomResourceDefinitions, the PersistentVolumes
	// bound to their claims, and the cluster roles their role bindings use.
	// When no namespace is selected explicitly, Auto behaves like Include.
	ClusterScopedAuto ClusterScopedResourcePolicy = "Auto"
	// ClusterScopedInclude takes every cluster-scoped resource that the other filters allow.
	ClusterScopedInclude ClusterScopedResourcePolicy = "Include"
	// ClusterScopedExclude takes no cluster-scoped resources.
	ClusterScopedExclude ClusterScopedResourcePolicy = "Exclude"
)

// ResourceSelection chooses the resources a backup or restore takes. Every filter
// narrows the selection; an empty selection takes everything.
// +kubebuilder:validation:XValidation:rule="!has(self.includedNamespaces) || !has(self.excludedNamespaces) || !self.includedNamespaces.exists(n, n in self.excludedNamespaces)",message="a namespace cannot be both included and excluded"
// +kubebuilder:validation:XValidation:rule="!has(self.includedResources) || !has(self.excludedResources) || !self.includedResources.exists(r, r in self.excludedResources)",message="a resource cannot be both included and excluded"
type ResourceSelection struct {
	// includedNamespaces are the namespaces to take; empty means all namespaces.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	IncludedNamespaces []NamespaceName `json:"includedNamespaces,omitempty"`

	// excludedNamespaces are namespaces to leave out.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	ExcludedNamespaces []NamespaceName `json:"excludedNamespaces,omitempty"`

	// includedResources are the resources to take; empty means all resources.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	IncludedResources []GroupResource `json:"includedResources,omitempty"`

	// excludedResources are resources to leave out, e.g. events or pods.metrics.k8s.io.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	ExcludedResources []GroupResource `json:"excludedResources,omitempty"`

	// labelSelector takes only the resources whose labels match it.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`

	// clusterScopedResources says which cluster-scoped resources to take.
	// +kubebuilder:default=Auto
	// +optional
	ClusterScopedResources ClusterScopedResourcePolicy `json:"clusterScopedResources,omitempty"`
}

// TakesNamespace reports whether the namespace filters select namespace ns:
// not excluded, and included when includedNamespaces names any. A nil
// selection takes every namespace. (Self-service backups take only their
// own namespace whatever the selection says; that is the caller's rule.)
func (s *ResourceSelection) TakesNamespace(ns string) bool {
	if s == nil {
		return true
	}
	for _, n := range s.ExcludedNamespaces {
		if string(n) == ns {
			return false
		}
	}
	if len(s.IncludedNamespaces) == 0 {
		return true
	}
	for _, n := range s.IncludedNamespaces {
		if string(n) == ns {
			return true
		}
	}
	return false
}
