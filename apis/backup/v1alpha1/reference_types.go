package v1alpha1

import "k8s.io/apimachinery/pkg/types"

// ObjectName is the name of an object that a field refers to: a DNS-1123 subdomain.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be an object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
type ObjectName string

// ClusterName is the name of a cluster in the fleet: the name of its BackupCluster
// and ManagedCluster on the hub, and of its namespace there (a DNS-1123 label).
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a cluster name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
type ClusterName string

// NamespaceName is the name of a namespace (a DNS-1123 label).
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a namespace name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
type NamespaceName string

// BackupID names one backup within its source cluster's folder in a bucket
// (lifeboat/v1/backups/<source-cluster>/<backup-id>/).
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="must be a backup ID: at most 128 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
type BackupID string

// HubObjectReference identifies an object on the hub, for a spoke object that the
// hub created on its behalf and for the records a spoke writes about it.
type HubObjectReference struct {
	// namespace of the hub object.
	// +required
	Namespace NamespaceName `json:"namespace"`

	// name of the hub object.
	// +required
	Name ObjectName `json:"name"`

	// uid of the hub object; it tells apart two objects that had the same name.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=36
	// +optional
	UID types.UID `json:"uid,omitempty"`
}
