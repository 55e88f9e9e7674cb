/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package entra_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra/entratest"
)

const (
	tenantID     = "6f2b1c3a-2a4e-4c4e-9d55-0d8f4f6b2a11"
	clientID     = "0b5a7f3e-9c1d-4d2b-8f0e-3b1f6c2d9e44"
	storageScope = "https://storage.azure.com/.default"
	spokeSubject = "system:serviceaccount:lifeboat-system:lifeboat-spoke"
)

type fixture struct {
	srv *entra.Server
	iss *entratest.Issuer
	app entra.Application
}

// setup starts the stand-in with one tenant, one app and a federated
// credential trusting a fake service-account issuer for spokeSubject.
func setup(t *testing.T) *fixture {
	t.Helper()
	g := NewWithT(t)
	srv, err := entra.New()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.Start()).To(Succeed())
	t.Cleanup(func() { _ = srv.Close() })
	iss := entratest.NewIssuer(t, false)
	g.Expect(srv.TrustIssuerCA(iss.URL(), iss.CACertPEM())).To(Succeed())
	app, err := srv.AddApplication(tenantID, clientID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.AddFederatedCredential(tenantID, clientID, entra.FederatedCredential{Name: "spoke", Issuer: iss.URL(), Subject: spokeSubject})).To(Succeed())
	return &fixture{srv: srv, iss: iss, app: app}
}

// credential is a real WorkloadIdentityCredential reading token from a file, configured
// the way the spoke will configure it: local authority host, our CA, no instance discovery.
func (f *fixture) credential(t *testing.T, tenant, client, token string) *azidentity.WorkloadIdentityCredential {
	t.Helper()
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientID:      client,
		TenantID:      tenant,
		TokenFilePath: entratest.WriteToken(t, t.TempDir(), "token", token),
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: f.srv.URL() + "/"},
			Transport: f.srv.HTTPClient(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return cred
}

func (f *fixture) spokeToken() string {
	return f.iss.Token(spokeSubject, []string{entra.DefaultAudience}, time.Hour)
}

func getToken(cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
}

func TestWorkloadIdentityCredentialGetsStorageToken(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	cred := f.credential(t, tenantID, clientID, f.spokeToken())

	tok, err := getToken(cred, storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tok.ExpiresOn).To(BeTemporally("~", time.Now().Add(time.Hour), time.Minute))

	claims, err := f.srv.Verifier("https://storage.azure.com").Verify(tok.Token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims.Issuer).To(Equal("https://sts.windows.net/" + tenantID + "/"))
	g.Expect(claims.Audience).To(Equal("https://storage.azure.com"))
	g.Expect(claims.TenantID).To(Equal(tenantID))
	g.Expect(claims.AppID).To(Equal(clientID))
	g.Expect(claims.ObjectID).To(Equal(f.app.ObjectID))
	g.Expect(claims.Subject).To(Equal(f.app.ObjectID))
	g.Expect(claims.NotBefore).To(BeTemporally("<", time.Now()))
	g.Expect(claims.IssuedAt).To(BeTemporally("<", time.Now()))

	raw := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(tok.Token, raw)
	g.Expect(err).NotTo(HaveOccurred())
	// aud is a string, as Entra writes it (Azurite refuses an array).
	g.Expect(raw).To(HaveKeyWithValue("aud", "https://storage.azure.com"))
	g.Expect(raw).To(HaveKeyWithValue("appid", clientID))
	g.Expect(raw).To(HaveKeyWithValue("azp", clientID))
	g.Expect(raw).To(HaveKeyWithValue("ver", "1.0"))
	g.Expect(raw).To(HaveKeyWithValue("idtyp", "app"))

	// azidentity caches the token; Entra is asked once.
	_, err = getToken(cred, storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.srv.TokensIssued(clientID)).To(Equal(1))

	// The object id is stable: a second credential gets the same oid.
	tok2, err := getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	claims2, err := f.srv.VerifyAccessToken(tok2.Token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims2.ObjectID).To(Equal(f.app.ObjectID))
	g.Expect(f.srv.TokensIssued(clientID)).To(Equal(2))
}

func TestES256IssuerIsAccepted(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	es := entratest.NewIssuer(t, true)
	g.Expect(f.srv.TrustIssuerCA(es.URL(), es.CACertPEM())).To(Succeed())
	g.Expect(f.srv.AddFederatedCredential(tenantID, clientID, entra.FederatedCredential{Name: "es", Issuer: es.URL(), Subject: spokeSubject})).To(Succeed())

	_, err := getToken(f.credential(t, tenantID, clientID, es.Token(spokeSubject, []string{entra.DefaultAudience}, time.Hour)), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
}

// TestRefusals checks that each mistake Entra refuses is refused with Entra's
// code and status, as seen through azidentity.
func TestRefusals(t *testing.T) {
	const otherTenant = "11111111-2222-4333-8444-555555555555"
	const otherClient = "99999999-8888-4777-8666-555555555555"
	cases := []struct {
		name   string
		tenant string
		client string
		scope  string
		token  func(t *testing.T, f *fixture) string
		status int
		code   int
		text   string
	}{{
		name: "unknown tenant", tenant: otherTenant,
		status: 400, code: entra.CodeTenantNotFound, text: "invalid_tenant",
	}, {
		name: "unknown app", client: otherClient,
		status: 400, code: entra.CodeAppNotFound, text: "was not found in the directory",
	}, {
		name: "issuer without a federated credential",
		token: func(t *testing.T, f *fixture) string {
			other := entratest.NewIssuer(t, false)
			_ = f.srv.TrustIssuerCA(other.URL(), other.CACertPEM())
			return other.Token(spokeSubject, []string{entra.DefaultAudience}, time.Hour)
		},
		status: 401, code: entra.CodeNoIssuerMatch, text: "presented assertion issuer",
	}, {
		name: "wrong subject",
		token: func(t *testing.T, f *fixture) string {
			return f.iss.Token("system:serviceaccount:default:intruder", []string{entra.DefaultAudience}, time.Hour)
		},
		status: 401, code: entra.CodeNoSubjectMatch, text: "subject 'system:serviceaccount:default:intruder'",
	}, {
		name: "wrong audience",
		token: func(t *testing.T, f *fixture) string {
			return f.iss.Token(spokeSubject, []string{"https://kubernetes.default.svc"}, time.Hour)
		},
		status: 401, code: entra.CodeNoFederatedRecordMatch, text: "Assertion Audience: 'https://kubernetes.default.svc'",
	}, {
		name: "expired assertion",
		token: func(t *testing.T, f *fixture) string {
			return f.iss.Token(spokeSubject, []string{entra.DefaultAudience}, -10*time.Minute)
		},
		status: 401, code: entra.CodeAssertionTimeRange, text: "not within its valid time range",
	}, {
		name: "assertion not yet valid",
		token: func(t *testing.T, f *fixture) string {
			now := time.Now()
			return f.iss.Sign(jwt.MapClaims{"iss": f.iss.URL(), "sub": spokeSubject, "aud": entra.DefaultAudience,
				"nbf": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		},
		status: 401, code: entra.CodeAssertionTimeRange, text: "not within its valid time range",
	}, {
		name: "bad signature",
		token: func(t *testing.T, f *fixture) string {
			now := time.Now()
			return f.iss.Forge(jwt.MapClaims{"iss": f.iss.URL(), "sub": spokeSubject, "aud": entra.DefaultAudience,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		},
		status: 401, code: entra.CodeInvalidSignature, text: "invalid signature",
	}, {
		name: "signing key no longer published",
		token: func(t *testing.T, f *fixture) string {
			tok := f.spokeToken()
			f.iss.Rotate(true)
			return tok
		},
		status: 401, code: entra.CodeSigningKeyNotFound, text: "could not be found in the metadata of identity provider",
	}, {
		name:   "not a JWT",
		token:  func(t *testing.T, f *fixture) string { return "not-a-jwt" },
		status: 400, code: entra.CodeMalformedAssertion, text: "invalid or malformed",
	}, {
		name: "issuer TLS not trusted",
		token: func(t *testing.T, f *fixture) string {
			untrusted := entratest.NewIssuer(t, false)
			_ = f.srv.AddFederatedCredential(tenantID, clientID, entra.FederatedCredential{Name: "untrusted", Issuer: untrusted.URL(), Subject: spokeSubject})
			return untrusted.Token(spokeSubject, []string{entra.DefaultAudience}, time.Hour)
		},
		status: 400, code: entra.CodeIssuerMetadata, text: "External OIDC endpoint failed",
	}, {
		name: "scope without /.default", scope: "https://storage.azure.com/user_impersonation",
		status: 400, code: entra.CodeScopeNotDefault, text: "invalid_scope",
	}, {
		name: "unknown resource", scope: "https://nothing.example.com/.default",
		status: 400, code: entra.CodeResourceNotFound, text: "invalid_resource",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := setup(t)
			tenant, client, scope := tenantID, clientID, storageScope
			if tc.tenant != "" {
				tenant = tc.tenant
			}
			if tc.client != "" {
				client = tc.client
			}
			if tc.scope != "" {
				scope = tc.scope
			}
			token := f.spokeToken()
			if tc.token != nil {
				token = tc.token(t, f)
			}
			_, err := getToken(f.credential(t, tenant, client, token), scope)
			g.Expect(err).To(HaveOccurred())
			var afe *azidentity.AuthenticationFailedError
			g.Expect(errors.As(err, &afe)).To(BeTrue(), "error: %v", err)
			g.Expect(afe.RawResponse).NotTo(BeNil(), "error: %v", err)
			g.Expect(afe.RawResponse.StatusCode).To(Equal(tc.status), "error: %v", err)
			g.Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("AADSTS%d:", tc.code)))
			g.Expect(err.Error()).To(ContainSubstring(tc.text))
			g.Expect(f.srv.TokensIssued(client)).To(BeZero())
		})
	}
}

// TestErrorResponseShape checks the raw error document against Entra's.
func TestErrorResponseShape(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {f.iss.Token("system:serviceaccount:x:y", []string{entra.DefaultAudience}, time.Hour)},
		"scope":                 {storageScope + " openid offline_access profile"},
	}
	const corr = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	req, err := http.NewRequest(http.MethodPost, f.srv.URL()+"/"+tenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("client-request-id", corr)
	resp, err := f.srv.HTTPClient().Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(resp.Header.Get("Content-Type")).To(HavePrefix("application/json"))

	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorCodes       []int  `json:"error_codes"`
		Timestamp        string `json:"timestamp"`
		TraceID          string `json:"trace_id"`
		CorrelationID    string `json:"correlation_id"`
		ErrorURI         string `json:"error_uri"`
	}
	g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
	g.Expect(body.Error).To(Equal("invalid_client"))
	g.Expect(body.ErrorCodes).To(Equal([]int{entra.CodeNoSubjectMatch}))
	g.Expect(body.CorrelationID).To(Equal(corr))
	g.Expect(body.TraceID).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
	g.Expect(body.Timestamp).To(MatchRegexp(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`))
	g.Expect(body.ErrorURI).To(Equal("https://login.microsoftonline.com/error?code=700213"))
	g.Expect(body.ErrorDescription).To(MatchRegexp(
		`^AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:x:y'\. .* Trace ID: ` +
			body.TraceID + ` Correlation ID: ` + corr + ` Timestamp: ` + body.Timestamp + `$`))
}

func TestDiscoveryDocument(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	resp, err := f.srv.HTTPClient().Get(f.srv.URL() + "/" + tenantID + "/v2.0/.well-known/openid-configuration")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var doc map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&doc)).To(Succeed())
	base := f.srv.URL() + "/" + tenantID
	g.Expect(doc).To(HaveKeyWithValue("issuer", base+"/v2.0"))
	g.Expect(doc).To(HaveKeyWithValue("token_endpoint", base+"/oauth2/v2.0/token"))
	g.Expect(doc).To(HaveKeyWithValue("authorization_endpoint", base+"/oauth2/v2.0/authorize"))
	g.Expect(doc).To(HaveKeyWithValue("jwks_uri", base+"/discovery/v2.0/keys"))

	// The published key verifies the access tokens.
	keys, err := f.srv.HTTPClient().Get(doc["jwks_uri"].(string))
	g.Expect(err).NotTo(HaveOccurred())
	defer keys.Body.Close()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	g.Expect(json.NewDecoder(keys.Body).Decode(&set)).To(Succeed())
	g.Expect(set.Keys).To(HaveLen(1))
	tok, err := getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	parsed, _, err := jwt.NewParser().ParseUnverified(tok.Token, jwt.MapClaims{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(parsed.Header["kid"]).To(Equal(set.Keys[0]["kid"]))

	unknown, err := f.srv.HTTPClient().Get(f.srv.URL() + "/11111111-2222-4333-8444-555555555555/v2.0/.well-known/openid-configuration")
	g.Expect(err).NotTo(HaveOccurred())
	defer unknown.Body.Close()
	g.Expect(unknown.StatusCode).To(Equal(http.StatusBadRequest))
	b, _ := io.ReadAll(unknown.Body)
	g.Expect(string(b)).To(ContainSubstring(`"error":"invalid_tenant"`))
	g.Expect(string(b)).To(ContainSubstring("AADSTS90002"))
}

func TestRemovingFederatedCredentialRevokesAccess(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	_, err := getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(f.srv.RemoveFederatedCredential(tenantID, clientID, "spoke")).To(Succeed())
	g.Expect(f.srv.FederatedCredentials(tenantID, clientID)).To(BeEmpty())
	_, err = getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).To(MatchError(ContainSubstring("AADSTS700211")))

	f.srv.RemoveApplication(tenantID, clientID)
	_, err = getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).To(MatchError(ContainSubstring("AADSTS700016")))
}

func TestIssuerKeysAreCachedAndRefetchedForANewKid(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	_, err := getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.iss.DiscoveryFetches()).To(Equal(1))
	g.Expect(f.iss.JWKSFetches()).To(Equal(1))

	_, err = getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.iss.DiscoveryFetches()).To(Equal(1), "known kid: keys come from the cache")

	f.iss.Rotate(false)
	_, err = getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.iss.DiscoveryFetches()).To(Equal(2), "unknown kid: keys are fetched again")
}

func TestAddFederatedCredentialValidates(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	add := func(fc entra.FederatedCredential) error { return f.srv.AddFederatedCredential(tenantID, clientID, fc) }
	g.Expect(add(entra.FederatedCredential{Name: "http", Issuer: "http://127.0.0.1:1", Subject: "s"})).To(MatchError(ContainSubstring("https")))
	g.Expect(add(entra.FederatedCredential{Name: "dup", Issuer: f.iss.URL(), Subject: spokeSubject})).To(MatchError(ContainSubstring("already has a federated credential for issuer")))
	g.Expect(add(entra.FederatedCredential{Name: "spoke", Issuer: f.iss.URL(), Subject: "other"})).To(MatchError(ContainSubstring("named")))
	g.Expect(add(entra.FederatedCredential{Name: "two", Issuer: f.iss.URL(), Subject: "two", Audiences: []string{"a", "b"}})).To(MatchError(ContainSubstring("exactly one audience")))
	g.Expect(f.srv.AddFederatedCredential(tenantID, "99999999-8888-4777-8666-555555555555", entra.FederatedCredential{Issuer: f.iss.URL(), Subject: "s"})).To(MatchError(ContainSubstring("not found")))
	_, err := f.srv.AddApplication("not-a-guid", clientID)
	g.Expect(err).To(HaveOccurred())

	g.Expect(add(entra.FederatedCredential{Issuer: f.iss.URL(), Subject: "defaults"})).To(Succeed())
	creds := f.srv.FederatedCredentials(tenantID, clientID)
	g.Expect(creds).To(ContainElement(entra.FederatedCredential{Name: "defaults", Issuer: f.iss.URL(), Subject: "defaults", Audiences: []string{entra.DefaultAudience}}))
}

// rawToken asks the token endpoint directly and returns the access token.
func rawToken(t *testing.T, f *fixture) string {
	t.Helper()
	g := NewWithT(t)
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {f.spokeToken()},
		"scope":                 {storageScope},
	}
	resp, err := f.srv.HTTPClient().PostForm(f.srv.URL()+"/"+tenantID+"/oauth2/v2.0/token", form)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var body map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
	g.Expect(body).To(HaveKeyWithValue("token_type", "Bearer"))
	g.Expect(body).To(HaveKey("ext_expires_in"))
	return body["access_token"].(string)
}

func TestVerifierRefusesWhatStorageRefuses(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	good := rawToken(t, f)
	_, err := f.srv.Verifier("https://storage.azure.com").Verify(good)
	g.Expect(err).NotTo(HaveOccurred())

	_, err = f.srv.Verifier("https://vault.azure.net").Verify(good)
	g.Expect(err).To(MatchError(entra.ErrAudience))
	g.Expect(err).To(MatchError("Audience validation failed. Audience did not match."))

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	_, err = f.srv.VerifyAccessToken(tampered)
	g.Expect(err).To(HaveOccurred())

	other, err := entra.New()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = other.VerifyAccessToken(good)
	g.Expect(err).To(MatchError(entra.ErrSignature))

	_, err = f.srv.VerifyAccessToken("garbage")
	g.Expect(err).To(MatchError(entra.ErrMalformed))

	f.srv.SetTokenLifetime(-10 * time.Minute)
	expired := rawToken(t, f)
	_, err = f.srv.VerifyAccessToken(expired)
	g.Expect(err).To(MatchError(entra.ErrExpired))
	g.Expect(err).To(MatchError("Lifetime validation failed. The token is expired."))
}

// TestConcurrentUse hands out tokens while credentials are being added and removed.
func TestConcurrentUse(t *testing.T) {
	g := NewWithT(t)
	f := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := getToken(f.credential(t, tenantID, clientID, f.spokeToken()), storageScope)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("extra-%d", i)
			if err := f.srv.AddFederatedCredential(tenantID, clientID, entra.FederatedCredential{Name: name, Issuer: f.iss.URL(), Subject: name}); err != nil {
				errs <- err
				return
			}
			errs <- f.srv.RemoveFederatedCredential(tenantID, clientID, name)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(f.srv.TokensIssued(clientID)).To(Equal(8))
}
