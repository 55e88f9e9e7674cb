package blob_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobcontainer "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra/entratest"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

const (
	tenantID = "3f0c2a5e-8b1d-4c7a-9e62-1d4b7f0a9c33"
	// spokeSubject is the subject of the spoke manager's service-account token.
	spokeSubject = "system:serviceaccount:lifeboat-system:lifeboat-spoke"
)

// azure is the package's Azure, started once in TestMain: Azurite behind the
// authorizing proxy, and the Entra ID stand-in.
var azure struct {
	azurite *azurite.Azurite
	proxy   *blobproxy.Proxy
	entra   *entra.Server
	// roots trusts the proxy and the Entra stand-in.
	roots *x509.CertPool
	// admin reaches Azurite directly with the account key, to set up and inspect containers.
	admin *azblob.Client
}

func TestMain(m *testing.M) {
	if os.Getenv(moverEnv) != "" { // a benchmark's mover process
		if err := serveMover(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "lifeboat-blob-test-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)

	if azure.entra, err = entra.New(); err != nil {
		return 1, err
	}
	if err := azure.entra.Start(); err != nil {
		return 1, err
	}
	defer azure.entra.Close()
	azure.entra.AddTenant(tenantID)

	if azure.azurite, err = azurite.Start(ctx, dir); err != nil {
		return 1, err
	}
	defer azure.azurite.Stop()
	if azure.proxy, err = blobproxy.New(azure.azurite.URL(), azure.azurite.CAPool(), azure.entra.Verifier()); err != nil {
		return 1, err
	}
	if err := azure.proxy.Start(); err != nil {
		return 1, err
	}
	defer azure.proxy.Close()

	azure.roots = x509.NewCertPool()
	azure.roots.AppendCertsFromPEM(azure.proxy.CACertPEM())
	azure.roots.AppendCertsFromPEM(azure.entra.CACertPEM())

	if azure.admin, err = azure.azurite.AdminClient(); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// identity is an Entra application whose federated credentials trust a test issuer.
type identity struct {
	app       entra.Application
	issuer    *entratest.Issuer
	tokenFile string
}

// newIdentity registers a new application, trusting the spoke's service
// account when federate is true, and writes a spoke token for it.
func newIdentity(t testing.TB, federate bool) identity {
	t.Helper()
	g := NewWithT(t)
	iss := entratest.NewIssuer(t, false)
	g.Expect(azure.entra.TrustIssuerCA(iss.URL(), iss.CACertPEM())).To(Succeed())
	app, err := azure.entra.AddApplication(tenantID, uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { azure.entra.RemoveApplication(tenantID, app.ClientID) })
	if federate {
		g.Expect(azure.entra.AddFederatedCredential(tenantID, app.ClientID, entra.FederatedCredential{Issuer: iss.URL(), Subject: spokeSubject})).To(Succeed())
	}
	token := iss.Token(spokeSubject, []string{entra.DefaultAudience}, time.Hour)
	return identity{app: app, issuer: iss, tokenFile: entratest.WriteToken(t, t.TempDir(), "token", token)}
}

// grant gives the identity role on container ("" for the account) until the test ends.
func (id identity) grant(t testing.TB, container string, role blobproxy.Role) {
	azure.proxy.Grant(id.app.ObjectID, azurite.Account, container, role)
	t.Cleanup(func() { azure.proxy.Revoke(id.app.ObjectID, azurite.Account, container, role) })
}

// config is the target of container/prefix for the identity, through the proxy.
func (id identity) config(container, prefix string) blob.Config {
	return blob.Config{
		StorageAccount: azurite.Account,
		Container:      container,
		Prefix:         prefix,
		Endpoint:       azure.proxy.AccountURL(azurite.Account),
		ClientID:       id.app.ClientID,
		TenantID:       tenantID,
		TokenFilePath:  id.tokenFile,
		AuthorityHost:  azure.entra.AuthorityHost(),
	}
}

// testOptions trust the fleet's CAs and allow its proxy as a private
// endpoint, keep credentials per test and retry briefly.
func testOptions(extra ...blob.Option) []blob.Option {
	return append([]blob.Option{
		blob.WithRootCAs(azure.roots),
		blob.WithAllowedEndpoints(azure.proxy.AccountURL(azurite.Account)),
		blob.WithCredentialCache(blob.NewCredentialCache()),
		blob.WithRetry(policy.RetryOptions{MaxRetries: 2, RetryDelay: 100 * time.Millisecond, MaxRetryDelay: time.Second}),
	}, extra...)
}

// newContainer creates a container with a unique name and deletes it when the test ends.
func newContainer(t testing.TB, base string) string {
	t.Helper()
	name := base + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	_, err := azure.admin.CreateContainer(context.Background(), name, nil)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _, _ = azure.admin.DeleteContainer(context.Background(), name, nil) })
	return name
}

// blobsIn lists the container directly in Azurite.
func blobsIn(t testing.TB, container string) []string {
	var names []string
	for _, b := range blobItems(t, container) {
		names = append(names, *b.Name)
	}
	return names
}

// blobItems lists the container's blobs and their properties directly in Azurite.
func blobItems(t testing.TB, container string) []*azblobcontainer.BlobItem {
	t.Helper()
	var items []*azblobcontainer.BlobItem
	pager := azure.admin.NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		items = append(items, page.Segment.BlobItems...)
	}
	return items
}

// requestLog is a transport that notes every storage request and its answer;
// requests really go out.
type requestLog struct {
	next *http.Client
	mu   sync.Mutex
	seen []string
}

func newRequestLog() *requestLog {
	return &requestLog{next: &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig(azure.roots)}}}
}

func (l *requestLog) Do(req *http.Request) (*http.Response, error) {
	resp, err := l.next.Do(req)
	status := "error"
	if err == nil {
		status = fmt.Sprint(resp.StatusCode)
	}
	l.mu.Lock()
	l.seen = append(l.seen, req.Method+" "+req.URL.Path+" "+status)
	l.mu.Unlock()
	return resp, err
}

func (l *requestLog) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}
