package blob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/lifeboat-dev/lifeboat/spoke/panics"
)

// Upload defaults: blocks of 8 MiB staged 4 at a time, so one upload holds at
// most 32 MiB of buffers (which azblob maps outside the Go heap) and a blob
// can grow to 50,000 blocks, about 390 GiB.
const (
	DefaultBlockSize   = 8 << 20
	DefaultConcurrency = 4
)

// storageAudience is Azure Storage's token audience in every cloud, and
// storageScope the scope that asks for it: the only tokens a Client asks for.
const (
	storageAudience = "https://storage.azure.com"
	storageScope    = storageAudience + "/.default"
)

// Client reads and writes the blobs of one target as the target's identity.
// It is safe for concurrent use.
type Client struct {
	cfg         resolved
	cred        azcore.TokenCredential
	svc         *azblob.Client
	blockSize   int64
	concurrency int
	validation  time.Duration
	pageSize    int32 // 0: the service's default (5000)
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	transport   policy.Transporter
	roots       *x509.CertPool
	retry       *policy.RetryOptions
	blockSize   int64
	concurrency int
	creds       *CredentialCache
	validation  time.Duration
	allowed     []string
}

// WithTransport sends every request, to storage and to Entra ID, through t
// (an *http.Client will do). It takes precedence over WithRootCAs.
func WithTransport(t policy.Transporter) Option { return func(o *options) { o.transport = t } }

// WithRootCAs trusts roots instead of the system's for storage and Entra ID,
// e.g. a private CA in front of a private endpoint, or a test's.
func WithRootCAs(roots *x509.CertPool) Option { return func(o *options) { o.roots = roots } }

// WithRetry replaces the SDK's retry policy for every request.
func WithRetry(r policy.RetryOptions) Option { return func(o *options) { o.retry = &r } }

// WithBlockSize sets the size of the blocks Upload stages (at least 1 MiB).
func WithBlockSize(n int64) Option { return func(o *options) { o.blockSize = n } }

// WithConcurrency sets how many blocks Upload stages at once, and how many
// blobs DeletePrefix deletes at once.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithCredentialCache keeps credentials in c instead of the package's cache.
func WithCredentialCache(c *CredentialCache) Option { return func(o *options) { o.creds = c } }

// WithValidationTimeout bounds a Validate whose context has no deadline (default 1m).
func WithValidationTimeout(d time.Duration) Option { return func(o *options) { o.validation = d } }

// WithAllowedEndpoints lets a Config's Endpoint be one of urls (compared
// without a trailing slash) besides the storage account's own URL in an Azure
// cloud: private endpoints that the cluster's admin trusts with tokens.
func WithAllowedEndpoints(urls ...string) Option {
	return func(o *options) { o.allowed = append(o.allowed, urls...) }
}

// New builds the client of one target. It signs in with a Workload Identity
// credential for the target's client ID and tenant, shared with every other
// Client of the same identity, token file or assertion subject, and authority. It does not reach
// out to Azure; Validate does. A Config that cannot work is a *ConfigError.
func New(cfg Config, opts ...Option) (*Client, error) {
	o := options{blockSize: DefaultBlockSize, concurrency: DefaultConcurrency, creds: defaultCredentials, validation: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	o.blockSize = max(o.blockSize, 1<<20)
	o.concurrency = max(o.concurrency, 1)

	r, err := cfg.resolve(o.allowed)
	if err != nil {
		return nil, err
	}
	transport := o.transport
	if transport == nil {
		transport = sharedHTTPClient(o.roots)
	}
	clientOptions := azcore.ClientOptions{Transport: transport}
	if o.retry != nil {
		clientOptions.Retry = *o.retry
	}

	cred, err := o.creds.get(r, clientOptions)
	if err != nil {
		return nil, err
	}
	storageOptions := azblob.ClientOptions{ClientOptions: clientOptions, Audience: storageAudience}
	storageOptions.PerCallPolicies = []policy.Policy{recoverPanics{}}
	storageOptions.PerRetryPolicies = []policy.Policy{ignoreChallenges{}}
	svc, err := azblob.NewClient(r.serviceURL, cred, &storageOptions)
	if err != nil {
		return nil, &ConfigError{Field: "Endpoint", Problem: err.Error()}
	}
	return &Client{cfg: r, cred: cred, svc: svc, blockSize: o.blockSize, concurrency: o.concurrency, validation: o.validation}, nil
}

// ServiceURL is the blob service URL the client talks to.
func (c *Client) ServiceURL() string { return c.cfg.serviceURL }

// credentialKey identifies a Workload Identity credential: the same identity
// from the same token file or assertion subject at the same authority is one
// credential, so its tokens are cached across Clients and validations.
type credentialKey struct {
	tenant, clientID, tokenFile, subject, authority string
}

// CredentialCache holds Workload Identity credentials. A credential keeps the
// transport and retry options of the New call that created it.
type CredentialCache struct {
	mu    sync.Mutex
	creds map[credentialKey]azcore.TokenCredential
}

// NewCredentialCache returns an empty cache.
func NewCredentialCache() *CredentialCache {
	return &CredentialCache{creds: map[credentialKey]azcore.TokenCredential{}}
}

var defaultCredentials = NewCredentialCache()

// Len is how many credentials the cache holds.
func (c *CredentialCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.creds)
}

func (c *CredentialCache) get(r resolved, co azcore.ClientOptions) (azcore.TokenCredential, error) {
	key := credentialKey{tenant: strings.ToLower(r.TenantID), clientID: strings.ToLower(r.ClientID), tokenFile: r.TokenFilePath, authority: r.authority}
	if r.Assertion != nil {
		key.subject = r.Assertion.Subject
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cred, ok := c.creds[key]; ok {
		return cred, nil
	}
	// Failed transport calls to Entra ID are recorded for Validate, because
	// azidentity reports them as a bare AuthenticationFailedError.
	co.Transport = recordingTransport{co.Transport}
	co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: r.authority}
	var cred azcore.TokenCredential
	var err error
	if r.Assertion != nil {
		cred, err = azidentity.NewClientAssertionCredential(r.TenantID, r.ClientID, r.Assertion.Token, &azidentity.ClientAssertionCredentialOptions{
			ClientOptions:            co,
			DisableInstanceDiscovery: !r.microsoftAuthority(),
		})
	} else {
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions:            co,
			ClientID:                 r.ClientID,
			TenantID:                 r.TenantID,
			TokenFilePath:            r.TokenFilePath,
			DisableInstanceDiscovery: !r.microsoftAuthority(),
		})
	}
	if err != nil {
		// azidentity checks only the tenant ID's characters here.
		return nil, &ConfigError{Field: "TenantID", Problem: err.Error()}
	}
	c.creds[key] = storageCredential{cred}
	return c.creds[key], nil
}

// storageCredential gets Azure Storage tokens of its identity's own tenant,
// whatever a request asks for: a token for another resource must never reach
// a storage endpoint.
type storageCredential struct{ azcore.TokenCredential }

func (c storageCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	opts.Scopes, opts.TenantID = []string{storageScope}, ""
	return c.TokenCredential.GetToken(ctx, opts)
}

// ignoreChallenges removes WWW-Authenticate from storage responses before
// azblob's challenge policy, which runs outside it, reads them: a challenge
// from the endpoint would make azblob ask for and send a token for the
// resource it names (resource_id), and one whose authorization_uri has fewer
// than four parts makes azblob v1.8.0 panic. A 401 stays an error, and the
// next request gets a fresh token. Continuous access evaluation challenges
// go too: a workload identity's next token carries what they would ask for.
type ignoreChallenges struct{}

func (ignoreChallenges) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if resp != nil {
		resp.Header.Del("WWW-Authenticate")
	}
	return resp, err
}

// recoverPanics makes a panic anywhere in a storage request's pipeline, the
// SDK's policies included, the request's error. It also covers the goroutines
// azblob starts itself to upload blocks, where no caller could recover.
type recoverPanics struct{}

func (recoverPanics) Do(req *policy.Request) (*http.Response, error) {
	return panics.Call(req.Raw().Context(), req.Next)
}

// transportFailures collects the errors of requests sent with a context that carries it.
type transportFailures struct {
	mu   sync.Mutex
	errs []error
}

type transportFailuresKey struct{}

func withTransportFailures(ctx context.Context) (context.Context, *transportFailures) {
	f := &transportFailures{}
	return context.WithValue(ctx, transportFailuresKey{}, f), f
}

func (f *transportFailures) last() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs[len(f.errs)-1]
}

// recordingTransport passes requests on and notes failures in the request
// context's transportFailures, if any.
type recordingTransport struct{ next policy.Transporter }

func (t recordingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if err != nil {
		if f, ok := req.Context().Value(transportFailuresKey{}).(*transportFailures); ok {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
		}
	}
	return resp, err
}

var (
	httpClientsMu sync.Mutex
	httpClients   = map[*x509.CertPool]*http.Client{}
)

// sharedHTTPClient returns one client per set of roots (nil: the system's), so
// that Clients built on every reconcile share their connections.
func sharedHTTPClient(roots *x509.CertPool) *http.Client {
	httpClientsMu.Lock()
	defer httpClientsMu.Unlock()
	if c, ok := httpClients[roots]; ok {
		return c
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}}
	httpClients[roots] = c
	return c
}
