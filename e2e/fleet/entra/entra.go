/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/

// Package entra is the test fleet's Microsoft Entra ID: a loopback TLS server
// with the OIDC discovery and token endpoints that azidentity calls, which
// exchanges a workload's federated token for an access token only when Entra
// would, and refuses with Entra's error codes otherwise.
//
// It verifies a client assertion as Entra does: the tenant and app must exist,
// the assertion must be a JWT signed by a key that the assertion's issuer
// publishes (read from <iss>/.well-known/openid-configuration and its jwks_uri,
// over TLS trusting the CA given with TrustIssuerCA), it must be within its
// valid time range, and one of the app's federated identity credentials must
// match its issuer, subject and audience exactly. Access tokens are v1.0 app
// tokens (iss https://sts.windows.net/{tenant}/) signed with the server's own
// RSA key; Verifier checks them for the authorizing proxy in front of Azurite.
//
// Point azidentity at it with ClientOptions (or by setting
// cloud.Configuration.ActiveDirectoryAuthorityHost to AuthorityHost() and
// trusting CACertPEM()), and always set DisableInstanceDiscovery: MSAL sends
// instance discovery for unknown hosts to login.microsoftonline.com.
package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/google/uuid"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
)

// DefaultAudience is the audience Entra puts on a new federated identity credential.
const DefaultAudience = "api://AzureADTokenExchange"

// Defaults for the knobs a test may change with SetTokenLifetime and SetClockSkew.
const (
	DefaultTokenLifetime = time.Hour
	DefaultClockSkew     = 5 * time.Minute
	maxFederatedCreds    = 20 // Entra's limit per application
)

// FederatedCredential is a federated identity credential on an app registration.
// Issuer, Subject and the audience are compared exactly (case-sensitively), as Entra does.
type FederatedCredential struct {
	// Name identifies the credential within its app; it defaults to the subject.
	Name string
	// Issuer is the token issuer URL, e.g. a kube-apiserver's --service-account-issuer.
	Issuer string
	// Subject is the token's sub, e.g. system:serviceaccount:<namespace>:<name>.
	Subject string
	// Audiences holds the one accepted audience; it defaults to DefaultAudience.
	Audiences []string
}

// Application is an app registration and its service principal.
type Application struct {
	TenantID string
	ClientID string
	// ObjectID is the service principal's object id, the oid of its access tokens.
	ObjectID string
}

type application struct {
	Application
	creds []FederatedCredential
}

type tenant struct {
	apps map[string]*application // by lower-case client id
}

// Server is the Entra stand-in. Its configuration methods are safe for
// concurrent use, also while it serves.
type Server struct {
	ca      *pki.CA
	serving tls.Certificate
	key     *rsa.PrivateKey
	kid     string
	issuers *issuerKeys

	mu            sync.RWMutex
	tenants       map[string]*tenant // by lower-case tenant id
	resources     map[string]bool
	issued        map[string]int // access tokens issued, by client id
	exchanges     []Exchange
	tokenLifetime time.Duration
	clockSkew     time.Duration

	ln  net.Listener
	srv *http.Server
	url string
}

// New creates a stand-in with its own CA and token signing key. Call Start to serve.
func New() (*Server, error) {
	ca, err := pki.NewCA("lifeboat-entra-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.Serving("entra")
	if err != nil {
		return nil, err
	}
	serving, err := kp.TLS()
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	s := &Server{
		ca:            ca,
		serving:       serving,
		key:           key,
		kid:           base64.RawURLEncoding.EncodeToString(sum[:20]),
		issuers:       newIssuerKeys(),
		tenants:       map[string]*tenant{},
		issued:        map[string]int{},
		tokenLifetime: DefaultTokenLifetime,
		clockSkew:     DefaultClockSkew,
		resources: map[string]bool{
			"https://storage.azure.com":           true,
			"https://management.azure.com":        true,
			"https://management.core.windows.net": true,
			"https://vault.azure.net":             true,
			"https://graph.microsoft.com":         true,
		},
	}
	return s, nil
}

// Start listens on a free port of 127.0.0.1 and serves until Close.
func (s *Server) Start() error {
	if s.srv != nil {
		return errors.New("entra: already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.serving}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return nil
}

// Close stops serving and drops every connection, including those to issuers.
func (s *Server) Close() error {
	s.issuers.close()
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// URL is https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// AuthorityHost is the value for cloud.Configuration.ActiveDirectoryAuthorityHost.
func (s *Server) AuthorityHost() string { return s.url + "/" }

// CACertPEM is the CA that signed the server's certificate.
func (s *Server) CACertPEM() []byte { return s.ca.CertPEM() }

// CAPool trusts the server's certificate.
func (s *Server) CAPool() *x509.CertPool { return s.ca.Pool() }

// HTTPClient is a client that trusts the server, usable as an azcore Transport.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.CAPool(), MinVersion: tls.VersionTLS12},
		Proxy:           nil,
	}, Timeout: 30 * time.Second}
}

// ClientOptions point an azidentity credential at the stand-in. Set
// DisableInstanceDiscovery on the credential options too.
func (s *Server) ClientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.AuthorityHost()},
		Transport: s.HTTPClient(),
	}
}

// SetTokenLifetime changes how long access tokens issued from now on live.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLifetime = d
}

// SetClockSkew changes how far outside its exp/nbf an assertion is still accepted.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clockSkew = d
}

// AddResource lets apps request tokens for another resource (application ID URI),
// besides Azure Storage, ARM, Key Vault and Graph.
func (s *Server) AddResource(resource string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources[strings.TrimSuffix(resource, "/")] = true
}

// AddTenant creates a tenant; adding an existing one does nothing.
func (s *Server) AddTenant(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTenantLocked(tenantID)
}

func (s *Server) addTenantLocked(tenantID string) *tenant {
	id := strings.ToLower(tenantID)
	t, ok := s.tenants[id]
	if !ok {
		t = &tenant{apps: map[string]*application{}}
		s.tenants[id] = t
	}
	return t
}

// RemoveTenant deletes a tenant and its apps.
func (s *Server) RemoveTenant(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tenants, strings.ToLower(tenantID))
}

// AddApplication registers clientID in tenantID (creating the tenant if needed)
// with a service principal of a new, stable object id. Registering an existing
// app returns it unchanged.
func (s *Server) AddApplication(tenantID, clientID string) (Application, error) {
	if !guid.MatchString(tenantID) || !guid.MatchString(clientID) {
		return Application{}, fmt.Errorf("entra: tenant %q and client %q must be GUIDs", tenantID, clientID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.addTenantLocked(tenantID)
	id := strings.ToLower(clientID)
	if app, ok := t.apps[id]; ok {
		return app.Application, nil
	}
	app := &application{Application: Application{TenantID: strings.ToLower(tenantID), ClientID: id, ObjectID: uuid.NewString()}}
	t.apps[id] = app
	return app.Application, nil
}

// RemoveApplication deletes an app registration and its credentials.
func (s *Server) RemoveApplication(tenantID, clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tenants[strings.ToLower(tenantID)]; ok {
		delete(t.apps, strings.ToLower(clientID))
	}
}

// Application returns a registered app.
func (s *Server) Application(tenantID, clientID string) (Application, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	app := s.appLocked(tenantID, clientID)
	if app == nil {
		return Application{}, false
	}
	return app.Application, true
}

func (s *Server) appLocked(tenantID, clientID string) *application {
	t, ok := s.tenants[strings.ToLower(tenantID)]
	if !ok {
		return nil
	}
	return t.apps[strings.ToLower(clientID)]
}

// AddFederatedCredential adds a federated identity credential to an app, with
// the checks Entra makes: an https issuer, exactly one audience, a unique name
// and a unique issuer+subject pair, at most 20 per app.
func (s *Server) AddFederatedCredential(tenantID, clientID string, fc FederatedCredential) error {
	if fc.Name == "" {
		fc.Name = fc.Subject
	}
	if len(fc.Audiences) == 0 {
		fc.Audiences = []string{DefaultAudience}
	}
	fc.Audiences = append([]string(nil), fc.Audiences...)
	if u, err := url.Parse(fc.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("entra: federated credential %q: issuer %q must be an https URL", fc.Name, fc.Issuer)
	}
	if fc.Subject == "" {
		return fmt.Errorf("entra: federated credential %q: subject is required", fc.Name)
	}
	if len(fc.Audiences) != 1 {
		return fmt.Errorf("entra: federated credential %q: exactly one audience is supported, got %d", fc.Name, len(fc.Audiences))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.appLocked(tenantID, clientID)
	if app == nil {
		return fmt.Errorf("entra: application %s not found in tenant %s", clientID, tenantID)
	}
	if len(app.creds) >= maxFederatedCreds {
		return fmt.Errorf("entra: application %s already has %d federated credentials", clientID, maxFederatedCreds)
	}
	for _, c := range app.creds {
		if c.Name == fc.Name {
			return fmt.Errorf("entra: application %s already has a federated credential named %q", clientID, fc.Name)
		}
		if c.Issuer == fc.Issuer && c.Subject == fc.Subject {
			return fmt.Errorf("entra: application %s already has a federated credential for issuer %q and subject %q", clientID, fc.Issuer, fc.Subject)
		}
	}
	app.creds = append(app.creds, fc)
	return nil
}

// RemoveFederatedCredential deletes an app's federated credential by name.
func (s *Server) RemoveFederatedCredential(tenantID, clientID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.appLocked(tenantID, clientID)
	if app == nil {
		return fmt.Errorf("entra: application %s not found in tenant %s", clientID, tenantID)
	}
	for i, c := range app.creds {
		if c.Name == name {
			app.creds = append(app.creds[:i], app.creds[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("entra: application %s has no federated credential named %q", clientID, name)
}

// FederatedCredentials lists an app's federated credentials.
func (s *Server) FederatedCredentials(tenantID, clientID string) []FederatedCredential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	app := s.appLocked(tenantID, clientID)
	if app == nil {
		return nil
	}
	return append([]FederatedCredential(nil), app.creds...)
}

// TrustIssuerCA makes the server trust caPEM when it fetches the discovery
// document and keys of issuerURL. Without it, the system roots are used.
func (s *Server) TrustIssuerCA(issuerURL string, caPEM []byte) error {
	return s.issuers.trust(issuerURL, caPEM)
}

// Exchange is one federated assertion the server verified and exchanged for
// an access token: who presented it (issuer and subject) for which app.
type Exchange struct {
	ClientID, Issuer, Subject, Resource string
}

// Exchanges lists the exchanges the server granted, oldest first.
func (s *Server) Exchanges() []Exchange {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Exchange(nil), s.exchanges...)
}

// TokensIssued is how many access tokens were issued to clientID.
func (s *Server) TokensIssued(clientID string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.issued[strings.ToLower(clientID)]
}

// Verifier checks access tokens signed by this server; when audiences are
// given, a token's aud must be one of them.
func (s *Server) Verifier(audiences ...string) *Verifier {
	return NewVerifier(map[string]*rsa.PublicKey{s.kid: &s.key.PublicKey}, audiences...)
}

// VerifyAccessToken checks an access token's signature, issuer and times, and returns its claims.
func (s *Server) VerifyAccessToken(token string) (*Claims, error) {
	return s.Verifier().Verify(token)
}
