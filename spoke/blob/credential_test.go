package blob

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// recordingCredential notes every token request.
type recordingCredential struct {
	mu       sync.Mutex
	requests []policy.TokenRequestOptions
}

func (c *recordingCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, opts)
	return azcore.AccessToken{Token: "token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Even where azblob's challenge policy asks for another resource's token (no
// ignoreChallenges in this pipeline), the credential gets storage tokens only.
func TestStorageCredentialAsksForStorageOnly(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/tenant/oauth2/authorize" resource_id="https://management.azure.com"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	inner := &recordingCredential{}
	svc, err := azblob.NewClient(srv.URL+"/acct", storageCredential{inner}, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = svc.ServiceClient().NewContainerClient("backups").GetProperties(context.Background(), nil)
	g.Expect(err).To(HaveOccurred())

	g.Expect(inner.requests).To(HaveLen(2), "the request and the challenge's retry")
	for _, r := range inner.requests {
		g.Expect(r.Scopes).To(Equal([]string{storageScope}))
		g.Expect(r.TenantID).To(BeEmpty())
	}
	_, err = storageCredential{inner}.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, TenantID: "other"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(inner.requests[2]).To(HaveField("Scopes", []string{storageScope}))
	g.Expect(inner.requests[2]).To(HaveField("TenantID", ""))
}

// The hub computes a location's service URL from the API's blob suffixes;
// they are this package's.
func TestBlobSuffixesMatchTheAPI(t *testing.T) {
	g := NewWithT(t)
	g.Expect(backupv1alpha1.BlobSuffixes).To(HaveLen(len(cloudEndpoints)))
	for cloud, ce := range cloudEndpoints {
		g.Expect(backupv1alpha1.BlobSuffixes).To(HaveKeyWithValue(backupv1alpha1.AzureCloud(cloud), ce.blobSuffix))
	}
}
