package v1alpha1

import "strings"

// NamespacePattern is a namespace name (payments), or a prefix ending in '*'
// that matches every namespace starting with it (payments-*; '*' alone
// matches every namespace).
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') || self.matches('^([a-z0-9][-a-z0-9]*)?[*]$')",message="must be a namespace name such as payments, or a prefix ending in '*' such as payments-* (lowercase letters, digits and '-')"
type NamespacePattern string

// Matches reports whether namespace ns is the pattern's name or starts with its prefix.
func (p NamespacePattern) Matches(ns string) bool {
	if prefix, ok := strings.CutSuffix(string(p), "*"); ok {
		return strings.HasPrefix(ns, prefix)
	}
	return string(p) == ns
}

// Permission allows or denies one kind of action.
// +kubebuilder:validation:Enum=Allow;Deny
type Permission string

// Permissions.
const (
	Allow Permission = "Allow"
	Deny  Permission = "Deny"
)

// Grant is what a fleet admin allows a hub tenant (a hub namespace) to do
// on the clusters bound to it. Nothing is allowed that is not listed.
type Grant struct {
	// namespaces are the namespaces the tenant may back up and restore
	// into: names, or prefixes ending in '*'. Empty grants none.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	Namespaces []NamespacePattern `json:"namespaces,omitempty"`

	// clusterScopedResources says whether the tenant's backups may take
	// (clusterScopedResources Include) and its restores may write
	// cluster-scoped objects. Default Deny.
	// +kubebuilder:default=Deny
	// +optional
	ClusterScopedResources Permission `json:"clusterScopedResources,omitempty"`

	// updateExistingResources says whether the tenant's restores may use
	// existingResourcePolicy Update (overwrite what exists). Default Deny.
	// +kubebuilder:default=Deny
	// +optional
	UpdateExistingResources Permission `json:"updateExistingResources,omitempty"`
}

// AllowsNamespace reports whether one of the granted patterns matches ns.
func (g *Grant) AllowsNamespace(ns string) bool {
	for _, p := range g.Namespaces {
		if p.Matches(ns) {
			return true
		}
	}
	return false
}

// AllowsClusterScoped reports whether cluster-scoped objects are granted.
func (g *Grant) AllowsClusterScoped() bool { return g.ClusterScopedResources == Allow }

// AllowsUpdate reports whether restores may update existing objects.
func (g *Grant) AllowsUpdate() bool { return g.UpdateExistingResources == Allow }

// Tenancy is the grant of the hub tenant an object was sent for. The hub
// puts it on every ApplicationBackup, ApplicationRestore and BackupDeletion
// it sends for a tenant, and the spoke refuses anything outside it. Absent on
// an object in lifeboat-system, the object was sent for a fleet admin or
// created by the cluster's admin, and nothing is restricted.
type Tenancy struct {
	// hubNamespace is the hub namespace the grant belongs to.
	// +required
	HubNamespace NamespaceName `json:"hubNamespace"`

	// Grant is what the tenant may do on this cluster.
	Grant `json:",inline"`
}
