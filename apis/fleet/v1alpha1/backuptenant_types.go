package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// BackupTenantSpec is what the hub namespace named like the BackupTenant may
// do on the clusters bound to it (ManagedClusterSetBindings in that
// namespace).
type BackupTenantSpec struct {
	// Grant lists the spoke namespaces and rights.
	backupv1alpha1.Grant `json:",inline"`
}

// BackupTenant is a fleet admin's grant to one hub namespace, its name: which
// spoke namespaces the namespace's Backups, Restores and BackupSchedules may
// use, and whether cluster-scoped objects and restores with Update are
// allowed. Which clusters it may use is OCM's ManagedClusterSetBindings in
// the namespace. A namespace without a BackupTenant may do nothing, unless
// the hub runs with it as a fleet admin namespace (--fleet-admin-namespaces).
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bten,categories={lifeboat,lifeboat-fleet}
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="a BackupTenant is named like the hub namespace it grants: at most 63 lowercase letters, digits and '-'"
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=".spec.namespaces"
// +kubebuilder:printcolumn:name="Cluster-scoped",type=string,JSONPath=".spec.clusterScopedResources"
// +kubebuilder:printcolumn:name="Update",type=string,JSONPath=".spec.updateExistingResources"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupTenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the grant.
	// +required
	Spec BackupTenantSpec `json:"spec"`
}

// BackupTenantList is a list of BackupTenants.
// +kubebuilder:object:root=true
type BackupTenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupTenants.
	Items []BackupTenant `json:"items"`
}
