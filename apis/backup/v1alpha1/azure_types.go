package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AzureCloud names the Azure cloud whose storage endpoints and Entra ID authority are used.
// +kubebuilder:validation:Enum=AzurePublic;AzureChina;AzureUSGovernment
type AzureCloud string

// Azure clouds.
const (
	AzurePublic       AzureCloud = "AzurePublic"
	AzureChina        AzureCloud = "AzureChina"
	AzureUSGovernment AzureCloud = "AzureUSGovernment"
)

// AzureBlobLocation is a folder in an Azure Blob Storage container. Backups live
// under it, so it cannot change once set: existing backups would be lost from view.
// +kubebuilder:validation:XValidation:rule="self.storageAccount == oldSelf.storageAccount",message="storageAccount is immutable: existing backups live there; create a new location instead"
// +kubebuilder:validation:XValidation:rule="self.container == oldSelf.container",message="container is immutable: existing backups live there; create a new location instead"
// +kubebuilder:validation:XValidation:rule="has(self.prefix) == has(oldSelf.prefix) && (!has(self.prefix) || self.prefix == oldSelf.prefix)",message="prefix is immutable: existing backups live there; create a new location instead"
// +kubebuilder:validation:XValidation:rule="has(self.endpoint) == has(oldSelf.endpoint) && (!has(self.endpoint) || self.endpoint == oldSelf.endpoint)",message="endpoint is immutable: existing backups live there; create a new location instead"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || ['core.windows.net', 'core.chinacloudapi.cn', 'core.usgovcloudapi.net'].exists(s, self.endpoint in ['https://' + self.storageAccount + '.blob.' + s, 'https://' + self.storageAccount + '.blob.' + s + '/']) || (!self.endpoint.matches('(?i)^https://[^/]*[.]core[.](windows[.]net|chinacloudapi[.]cn|usgovcloudapi[.]net)([:/]|$)') && isURL(self.endpoint) && (url(self.endpoint).getHostname().startsWith(self.storageAccount + '.') || url(self.endpoint).getEscapedPath() in ['/' + self.storageAccount, '/' + self.storageAccount + '/']))",message="endpoint must be https://<storageAccount>.blob.core.windows.net (or .blob.core.chinacloudapi.cn, .blob.core.usgovcloudapi.net), or a private endpoint that names the storage account, https://<storageAccount>.<host> or https://<host>/<storageAccount>, which a spoke uses only if its admin allowed it (--allowed-blob-endpoint)"
type AzureBlobLocation struct {
	// storageAccount is the name of the Azure storage account.
	// +kubebuilder:validation:MaxLength=24
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]{3,24}$')",message="storageAccount must be 3-24 lowercase letters and digits"
	// +required
	StorageAccount string `json:"storageAccount"`

	// container is the blob container in the storage account. It must exist:
	// Lifeboat does not create containers.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="size(self) > 0",message="container must not be empty"
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || (size(self) >= 3 && self.matches('^[a-z0-9]+(-[a-z0-9]+)*$'))",message="container must be 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
	// +required
	Container string `json:"container"`

	// prefix is the folder inside the container that holds Lifeboat's data, so
	// one container can serve several locations. Empty means the container's root.
	// Lifeboat keeps its data under <prefix>/lifeboat/, so a prefix has no
	// segment named lifeboat: it could lie inside another location's data.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)lifeboat(/|$)')",message="prefix must not contain a 'lifeboat' path segment: Lifeboat keeps its data under <prefix>/lifeboat/, so such a prefix could lie inside another location's backups"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="prefix must be a relative path: remove the leading '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.]?(/|$)')",message="prefix must not contain '.' or '..' path segments"
	// +kubebuilder:validation:XValidation:rule="self.matches('^/?[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$')",message="prefix may contain only letters, digits, '.', '_', '~' and '-', with single '/' between segments and no trailing '/'"
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// endpoint overrides the blob service URL that cloud and storageAccount
	// imply. It is either the account's own URL in one of the Azure clouds,
	// https://<storageAccount>.blob.core.windows.net (.blob.core.chinacloudapi.cn,
	// .blob.core.usgovcloudapi.net), or a private endpoint that names the account,
	// https://<storageAccount>.<host> or https://<host>/<storageAccount>. A spoke
	// sends the identity's token to a private endpoint only if its admin allowed
	// that exact URL; otherwise the target is Invalid with reason EndpointNotAllowed.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="endpoint must be an https URL such as https://myaccount.blob.core.windows.net"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@') && !self.contains('?') && !self.contains('#')",message="endpoint must be the blob service URL only, without credentials, query or fragment"
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// cloud is the Azure cloud the storage account belongs to.
	// +kubebuilder:default=AzurePublic
	// +optional
	Cloud AzureCloud `json:"cloud,omitempty"`
}

// BlobSuffixes are the blob service domains of the Azure clouds.
var BlobSuffixes = map[AzureCloud]string{
	AzurePublic:       "blob.core.windows.net",
	AzureChina:        "blob.core.chinacloudapi.cn",
	AzureUSGovernment: "blob.core.usgovcloudapi.net",
}

// ServiceURL is the blob service URL the location is reached at, without a
// trailing slash: endpoint if set, else the storage account's in its cloud.
func (a AzureBlobLocation) ServiceURL() string {
	if a.Endpoint != "" {
		return strings.TrimSuffix(a.Endpoint, "/")
	}
	suffix, ok := BlobSuffixes[a.Cloud]
	if !ok {
		suffix = BlobSuffixes[AzurePublic]
	}
	return "https://" + a.StorageAccount + "." + suffix
}

// AzureWorkloadIdentity is the Entra ID application a spoke signs in as, with
// Azure Workload Identity: its service-account token is exchanged for a token of
// this application, which needs a federated credential for every spoke cluster.
type AzureWorkloadIdentity struct {
	// clientID is the application (client) ID of the managed identity or app registration.
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')",message="clientID must be a GUID such as 00000000-0000-0000-0000-000000000000"
	// +required
	ClientID string `json:"clientID"`

	// tenantID is the Entra ID tenant (directory) ID of the identity.
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')",message="tenantID must be a GUID such as 00000000-0000-0000-0000-000000000000"
	// +required
	TenantID string `json:"tenantID"`
}

// StorageTarget is where backups are stored and how a spoke reaches them. The hub
// copies a BackupLocation's StorageTarget into a BackupTarget on every cluster
// that may use the location.
type StorageTarget struct {
	// azure is the Azure Blob Storage folder that holds the backups.
	// +required
	Azure AzureBlobLocation `json:"azure"`

	// identity is the Entra ID application the spoke uses to reach the storage account.
	// +required
	Identity AzureWorkloadIdentity `json:"identity"`

	// validationInterval is how often a spoke checks again that it can list, write,
	// read and delete blobs in the container (it also checks on every change).
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="validationInterval must be a duration such as 30m or 1h (units h, m, s)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('168h'))",message="validationInterval must be between 1m and 168h"
	// +optional
	ValidationInterval *metav1.Duration `json:"validationInterval,omitempty"`

	// encryption, when set, encrypts the backups' files on each cluster before
	// they leave it, with a key that only the clusters hold: the hub carries
	// this reference, never the key. Every cluster that uses the location needs
	// the Secret; one without it, or with another key, cannot restore the backups.
	// +optional
	Encryption *Encryption `json:"encryption,omitempty"`

	// moverSettings are how the pods that move volume data run on each
	// cluster: their resources, nodes, tolerations and priority class.
	// +optional
	MoverSettings *MoverSettings `json:"moverSettings,omitempty"`
}

// EncryptionKeyNamespace holds the encryption key Secrets that BackupTargets
// name, on each cluster: the spoke's own namespace, where teams have no access.
const EncryptionKeyNamespace = TargetServiceAccountNamespace

// LabelEncryptionKey, set to "true", marks a Secret in EncryptionKeyNamespace
// that targets may use as their encryption key; the spoke reads no other.
const LabelEncryptionKey = "backup.lifeboat.dev/encryption-key"

// Encryption is client-side encryption of backups with an age key
// (https://age-encryption.org) kept on the clusters.
type Encryption struct {
	// keySecretRef names the Secret, in lifeboat-system on every cluster that
	// uses the target, and its key that holds an age X25519 identity as
	// age-keygen writes it (AGE-SECRET-KEY-1..., comment lines allowed). The
	// Secret must carry the label backup.lifeboat.dev/encryption-key: "true",
	// so that a location cannot make the spoke read any other Secret there.
	// +required
	KeySecretRef SecretKeyReference `json:"keySecretRef"`
}

// SecretKeyReference is a key of a Secret in a namespace the field's
// documentation names.
type SecretKeyReference struct {
	// name is the Secret's name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +required
	Name string `json:"name"`

	// key is the key in the Secret's data.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must be a Secret data key: letters, digits, '-', '_' and '.'"
	// +required
	Key string `json:"key"`
}
