package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
)

// TenantID is the Entra tenant of the fleet's Azure identities.
const TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

// StorageAccount is the fleet's storage account (Azurite's development account).
const StorageAccount = azurite.Account

// Spoke manager's service account, whose projected token each spoke keeps in
// Spoke.TokenFile, as the kubelet projects it into the manager's pod. The
// manager signs in to storage with its targets' own accounts instead; tests
// use this one for their own access as an identity.
const (
	SpokeNamespace      = "lifeboat-system"
	SpokeServiceAccount = "lifeboat-spoke"
)

// Azure is the fleet's Azure: Azurite with the authorizing proxy in front of it
// (what clients use as the blob endpoint) and the Entra ID stand-in.
type Azure struct {
	// podFacing: spokes run as pods and reach the proxy at HostAddress.
	podFacing bool
	Azurite   *azurite.Azurite
	Proxy     *blobproxy.Proxy
	Entra     *entra.Server
}

// StartAzure starts the Entra ID stand-in (with the fleet's tenant), Azurite
// under dir and the authorizing proxy in front of it; Stop ends them. Tests
// that need Azure without a fleet use it directly; the clusters' issuers must
// be trusted (Entra.TrustIssuerCA) and allow discovery (AllowIssuerDiscovery).
func StartAzure(ctx context.Context, dir string) (a *Azure, err error) {
	a = &Azure{}
	// A failed return ("return nil, err") sets a to nil before this runs.
	started := a
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	if a.Entra, err = entra.New(); err != nil {
		return nil, err
	}
	if err := a.Entra.Start(); err != nil {
		return nil, err
	}
	a.Entra.AddTenant(TenantID)
	if a.Azurite, err = azurite.Start(ctx, filepath.Join(dir, "azurite")); err != nil {
		return nil, err
	}
	if a.Proxy, err = blobproxy.New(a.Azurite.Endpoint(), a.Azurite.CAPool(), a.Entra.Verifier()); err != nil {
		return nil, err
	}
	return a, a.Proxy.Start()
}

// Stop stops the proxy, Azurite and the Entra stand-in.
func (a *Azure) Stop() {
	if a == nil {
		return
	}
	if a.Proxy != nil {
		_ = a.Proxy.Close()
	}
	if a.Azurite != nil {
		_ = a.Azurite.Stop()
	}
	if a.Entra != nil {
		_ = a.Entra.Close()
	}
}

// BlobEndpoint is the account URL clients use: the proxy's.
func (a *Azure) BlobEndpoint() string { return a.Proxy.AccountURL(StorageAccount) }

// SpokeBlobEndpoint is the blob endpoint as the spokes reach it, for
// BackupLocations: at HostAddress when the spokes run as pods (Options.Pods).
// Only pods use it; the host uses BlobEndpoint.
func (a *Azure) SpokeBlobEndpoint() string {
	if a.podFacing {
		return podURL(a.BlobEndpoint())
	}
	return a.BlobEndpoint()
}

// Identity is an Entra application (a user-assigned identity's client ID).
type Identity struct {
	ClientID, ObjectID string
}

// NewIdentity registers an application with clientID in the fleet's tenant.
func (a *Azure) NewIdentity(clientID string) (Identity, error) {
	app, err := a.Entra.AddApplication(TenantID, clientID)
	if err != nil {
		return Identity{}, err
	}
	return Identity{ClientID: app.ClientID, ObjectID: app.ObjectID}, nil
}

// Federate lets tokens of subject from cluster's issuer sign in as id, as
// `az identity federated-credential create` does. subject is a BackupTarget's
// (backupv1alpha1.TargetSubject; backuplocation.FederatedSubject for a hub
// location's), or spoke.TokenFile.Subject for a test's own access as id.
// Entra refuses a 21st credential on one identity.
func (a *Azure) Federate(id Identity, cluster *ControlPlane, subject string) error {
	return a.Entra.AddFederatedCredential(TenantID, id.ClientID, entra.FederatedCredential{
		Name:    "lifeboat-" + cluster.Name + "-" + subject[strings.LastIndex(subject, ":")+1:],
		Issuer:  cluster.Issuer(),
		Subject: subject,
	})
}

// CreateContainer creates container name as the storage account's owner does.
func (a *Azure) CreateContainer(ctx context.Context, name string) error {
	admin, err := a.Azurite.AdminClient()
	if err != nil {
		return err
	}
	_, err = admin.CreateContainer(ctx, name, nil)
	return err
}

// Grant gives id a data role on container (empty: the whole account).
func (a *Azure) Grant(id Identity, container string, role blobproxy.Role) {
	a.Proxy.Grant(id.ObjectID, StorageAccount, container, role)
}

// GrantWithCondition gives id a data role on container with an Azure ABAC
// condition on the assignment, such as writes only under one cluster's folder.
func (a *Azure) GrantWithCondition(id Identity, container string, role blobproxy.Role, cond blobproxy.Condition) {
	a.Proxy.GrantWithCondition(id.ObjectID, StorageAccount, container, role, cond)
}

// Credential is the Workload Identity credential a spoke manager builds for id
// from its token file, pointed at the Entra stand-in.
func (a *Azure) Credential(id Identity, tokenFile string) (*azidentity.WorkloadIdentityCredential, error) {
	opts := a.Entra.ClientOptions()
	return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions:            opts,
		ClientID:                 id.ClientID,
		TenantID:                 TenantID,
		TokenFilePath:            tokenFile,
		DisableInstanceDiscovery: true,
	})
}

// BlobClient is an azblob client for the fleet's account through the proxy.
func (a *Azure) BlobClient(cred azcore.TokenCredential) (*azblob.Client, error) {
	return azblob.NewClient(a.BlobEndpoint(), cred, &azblob.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: a.Proxy.HTTPClient(), Retry: policyFewRetries},
	})
}

// Tests want refusals fast, not after the SDK's default retries.
var policyFewRetries = policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second}

func (a *Azure) String() string {
	return fmt.Sprintf("blob %s (Azurite %s), Entra %s", a.BlobEndpoint(), a.Azurite.URL(), a.Entra.URL())
}
