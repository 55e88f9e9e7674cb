package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TargetPhase is how the latest validation of a storage target ended on one
// cluster. The hub shows the same phases per cluster on a BackupLocation.
// +kubebuilder:validation:Enum=Pending;InProgress;Valid;Invalid;Failed
type TargetPhase string

// Target phases.
const (
	// TargetPending: not validated yet.
	TargetPending TargetPhase = "Pending"
	// TargetInProgress: a validation is running.
	TargetInProgress TargetPhase = "InProgress"
	// TargetValid: the cluster can list, write, read and delete blobs in the container.
	TargetValid TargetPhase = "Valid"
	// TargetInvalid: the storage refused the cluster or does not exist; the reason
	// (AuthenticationFailed, AuthorizationFailed, ContainerNotFound, ...) says why.
	TargetInvalid TargetPhase = "Invalid"
	// TargetFailed: the validation could not run, e.g. the spoke did not get the
	// BackupTarget or crashed; it says nothing about the storage itself.
	TargetFailed TargetPhase = "Failed"
)

// ValidationState is the outcome of the latest validation of a storage target on one cluster.
type ValidationState struct {
	// phase is how the latest validation ended.
	// +optional
	Phase TargetPhase `json:"phase,omitempty"`

	// reason classifies the outcome in one CamelCase word, e.g. AuthorizationFailed.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// message says what happened, for a person.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Message string `json:"message,omitempty"`

	// lastValidationTime is when the latest validation finished.
	// +optional
	LastValidationTime *metav1.Time `json:"lastValidationTime,omitempty"`
}

// LabelHubNamespace on a BackupTarget the hub made names the hub namespace of
// its BackupLocation. An object the hub sends for another hub namespace may
// not use the target.
const LabelHubNamespace = "fleet.lifeboat.dev/namespace"

// Each BackupTarget signs in to Entra ID as a ServiceAccount of its own in
// the spoke's namespace, so that an identity federated for one target's
// subject trusts no other target on the cluster.
const (
	// TargetServiceAccountNamespace holds the targets' ServiceAccounts.
	TargetServiceAccountNamespace = "lifeboat-system"
	// LabelTarget on a target's ServiceAccount names the BackupTarget.
	LabelTarget = "backup.lifeboat.dev/target"
)

// TargetServiceAccount is the name of the ServiceAccount that BackupTarget
// target signs in as: "lifeboat-target-" and 16 hex digits of the SHA-256 of
// the target's name, short and distinct from the spoke's own accounts.
func TargetServiceAccount(target string) string {
	sum := sha256.Sum256([]byte(target))
	return "lifeboat-target-" + hex.EncodeToString(sum[:8])
}

// TargetSubject is the subject of BackupTarget target's service-account
// tokens: the subject of the federated credentials its identity needs, one
// per cluster issuer.
func TargetSubject(target string) string {
	return "system:serviceaccount:" + TargetServiceAccountNamespace + ":" + TargetServiceAccount(target)
}

// BackupTargetSpec is this cluster's view of a storage location.
type BackupTargetSpec struct {
	// StorageTarget is where the backups are and how the cluster reaches them.
	StorageTarget `json:",inline"`

	// allowedNamespaces selects the namespaces whose teams may use this target
	// for their own ApplicationBackups and ApplicationRestores. Unset means only
	// the hub may use it; an empty selector allows every namespace.
	// +optional
	AllowedNamespaces *metav1.LabelSelector `json:"allowedNamespaces,omitempty"`

	// allowedSourceClusters are the other clusters whose backups teams may
	// restore and delete through this target: still only the backups their
	// own namespace made there, never the hub's. Unset, a team uses only this
	// cluster's backups.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	AllowedSourceClusters []ClusterName `json:"allowedSourceClusters,omitempty"`

	// policyResources says whether teams' restores through this target may
	// write RBAC, quota and policy objects (Roles, RoleBindings,
	// ResourceQuotas, LimitRanges, NetworkPolicies); denied, they are left
	// out. Even allowed, each write is made as the team's requester.
	// +kubebuilder:default=Deny
	// +optional
	PolicyResources Permission `json:"policyResources,omitempty"`

	// updateExistingResources says whether teams' restores through this
	// target may use existingResourcePolicy Update.
	// +kubebuilder:default=Deny
	// +optional
	UpdateExistingResources Permission `json:"updateExistingResources,omitempty"`
}

// AllowsSourceCluster reports whether teams may use backups of cluster
// through the target, this one being the cluster they run on.
func (s *BackupTargetSpec) AllowsSourceCluster(cluster, this string) bool {
	return cluster == this || slices.Contains(s.AllowedSourceClusters, ClusterName(cluster))
}

// BackupTargetStatus is what the spoke found when it last validated the target.
type BackupTargetStatus struct {
	// conditions: Validated and Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec that the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// federatedSubject is the subject this target signs in to Entra ID as, with
	// a token of its own ServiceAccount in lifeboat-system: the target's
	// identity needs a federated credential for it and this cluster's issuer.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	FederatedSubject string `json:"federatedSubject,omitempty"`

	// ValidationState is the outcome of the latest validation.
	ValidationState `json:",inline"`
}

// BackupTarget is an Azure Blob container that this cluster writes backups to and
// reads them from, checked regularly. The hub creates one per BackupLocation that
// may be used by the cluster; a cluster admin may also create one directly.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=btgt,categories={lifeboat,lifeboat-spoke}
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=".spec.azure.storageAccount"
// +kubebuilder:printcolumn:name="Container",type=string,JSONPath=".spec.azure.container"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.reason"
// +kubebuilder:printcolumn:name="Validated",type=date,JSONPath=".status.lastValidationTime"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BackupTarget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the storage location and who may use it.
	// +required
	Spec BackupTargetSpec `json:"spec"`

	// status is the outcome of the latest validation.
	// +optional
	Status BackupTargetStatus `json:"status,omitempty"`
}

// BackupTargetList is a list of BackupTargets.
// +kubebuilder:object:root=true
type BackupTargetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the BackupTargets.
	Items []BackupTarget `json:"items"`
}
