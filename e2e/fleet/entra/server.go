/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package entra

import (
	"context"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
)

const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.keys)
	mux.HandleFunc("GET /common/discovery/instance", s.instanceDiscovery)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	return mux
}

func (s *Server) tenantExists(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.tenants[strings.ToLower(id)]
	return ok
}

func tenantNotFound(id string) *aadError {
	return refuse("invalid_tenant", CodeTenantNotFound, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", id)
}

// discovery serves the tenant's OIDC discovery document, in the shape of
// login.microsoftonline.com's v2.0 document; MSAL requires authorization_endpoint,
// token_endpoint and an issuer on the authority's host.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("tenant")
	if !s.tenantExists(t) {
		writeAADError(w, r, tenantNotFound(t))
		return
	}
	origin := s.origin(r)
	base := origin + "/" + t
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     origin + "/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "azp", "appid"},
		"tenant_region_scope":                   "WW",
	})
}

// keys publishes the key that signs access tokens.
func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": s.kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// origin is the authority as the client addressed it: the server's own URL,
// or the address at which pods on the fleet's nodes reach it (pki.HostAddress
// and the same port). Entra's documents name the host they were fetched from.
func (s *Server) origin(r *http.Request) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "https://"))
	if r.Host == net.JoinHostPort(pki.HostAddress, port) {
		return "https://" + r.Host
	}
	return s.url
}

// instanceDiscovery answers MSAL's instance discovery for this host. MSAL sends
// it to login.microsoftonline.com for hosts it does not know, so clients of the
// stand-in must still disable instance discovery; it is here for clients that
// ask the authority itself.
func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	origin := s.origin(r)
	host := strings.TrimPrefix(origin, "https://")
	tenantPath := "common"
	if ae, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil {
		if parts := strings.Split(strings.Trim(ae.Path, "/"), "/"); len(parts) > 0 && parts[0] != "" {
			tenantPath = parts[0]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": origin + "/" + tenantPath + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

// tokenResponse is Entra's answer to a client credentials grant.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeAADError(w, r, refuse("invalid_request", CodeMissingParameter, "The request body must contain the following parameter: 'grant_type'."))
		return
	}
	resp, aerr := s.exchange(r.Context(), r.PathValue("tenant"), r.PostForm)
	if aerr != nil {
		writeAADError(w, r, aerr)
		return
	}
	w.Header().Set("client-request-id", correlationID(r))
	writeJSON(w, http.StatusOK, resp)
}

// exchange runs Entra's checks on a client credentials request with a
// federated client assertion, in Entra's order: request shape, tenant, app,
// assertion (issuer, signature, lifetime, subject, audience), resource.
func (s *Server) exchange(ctx context.Context, tenantID string, form url.Values) (*tokenResponse, *aadError) {
	if !s.tenantExists(tenantID) {
		return nil, tenantNotFound(tenantID)
	}
	for _, p := range []string{"grant_type", "client_id", "scope"} {
		if form.Get(p) == "" {
			return nil, refuse("invalid_request", CodeMissingParameter, "The request body must contain the following parameter: '%s'.", p)
		}
	}
	if g := form.Get("grant_type"); g != grantClientCredentials {
		return nil, refuse("unsupported_grant_type", CodeUnsupportedGrantType, "The app requested an unsupported grant type '%s'.", g)
	}
	resource, aerr := parseScope(form.Get("scope"))
	if aerr != nil {
		return nil, aerr
	}
	clientID := form.Get("client_id")
	s.mu.RLock()
	app := s.appLocked(tenantID, clientID)
	var creds []FederatedCredential
	var appInfo Application
	if app != nil {
		creds = append(creds, app.creds...)
		appInfo = app.Application
	}
	skew, lifetime := s.clockSkew, s.tokenLifetime
	resourceKnown := s.resources[resource] || isAccountResource(resource)
	s.mu.RUnlock()
	if app == nil {
		return nil, refuse("unauthorized_client", CodeAppNotFound, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenantID)
	}
	if form.Get("client_secret") != "" {
		return nil, refuse("invalid_client", CodeClientSecretInvalid, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)
	}
	assertion := form.Get("client_assertion")
	if assertion == "" || form.Get("client_assertion_type") != assertionTypeJWTBearer {
		return nil, refuse("invalid_client", CodeAssertionRequired, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
	}
	if aerr := s.verifyAssertion(ctx, assertion, creds, skew); aerr != nil {
		return nil, aerr
	}
	if !resourceKnown {
		return nil, refuse("invalid_resource", CodeResourceNotFound, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenantID)
	}
	token, err := s.mint(appInfo, resource, lifetime)
	if err != nil {
		return nil, refuse("temporarily_unavailable", 0, "signing the access token: %v", err)
	}
	// The assertion is verified: record who presented it.
	var claims assertionClaims
	_, _, _ = jwt.NewParser().ParseUnverified(assertion, &claims)
	s.mu.Lock()
	s.issued[appInfo.ClientID]++
	s.exchanges = append(s.exchanges, Exchange{ClientID: appInfo.ClientID, Issuer: claims.Issuer, Subject: claims.Subject, Resource: resource})
	s.mu.Unlock()
	secs := int(lifetime/time.Second) - 1
	return &tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: token}, nil
}

// parseScope returns the one resource of a client credentials scope. MSAL
// always adds openid, profile and offline_access, which Entra ignores here.
func parseScope(scope string) (string, *aadError) {
	var rest []string
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "openid", "profile", "offline_access":
		default:
			rest = append(rest, sc)
		}
	}
	if len(rest) == 0 {
		return "", refuse("invalid_scope", CodeScopeNotDefault, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
	}
	if len(rest) > 1 {
		return "", refuse("invalid_scope", CodeInvalidScope, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", strings.Join(rest, " "))
	}
	sc := rest[0]
	if !strings.HasSuffix(sc, "/.default") {
		return "", refuse("invalid_scope", CodeScopeNotDefault, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", sc)
	}
	resource := strings.TrimSuffix(sc, "/.default")
	if u, err := url.Parse(resource); err != nil || resource == "" || (u.Scheme == "" && !guid.MatchString(resource)) {
		return "", refuse("invalid_scope", CodeInvalidScope, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", sc)
	}
	return strings.TrimSuffix(resource, "/"), nil
}

// isAccountResource accepts a storage account's own endpoint as resource, as Entra does.
func isAccountResource(resource string) bool {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme != "https" {
		return false
	}
	return strings.HasSuffix(u.Host, ".blob.core.windows.net") || strings.HasSuffix(u.Host, ".dfs.core.windows.net")
}

// assertionClaims are the client assertion's claims that Entra looks at.
type assertionClaims struct {
	jwt.RegisteredClaims
}

// verifyAssertion checks a federated client assertion against the app's credentials.
func (s *Server) verifyAssertion(ctx context.Context, assertion string, creds []FederatedCredential, skew time.Duration) *aadError {
	var claims assertionClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithoutClaimsValidation())
	unverified, _, err := parser.ParseUnverified(assertion, &claims)
	if err != nil || claims.Issuer == "" {
		return refuse("invalid_request", CodeMalformedAssertion, "JWT token is invalid or malformed.")
	}
	iss, sub, aud := claims.Issuer, claims.Subject, []string(claims.Audience)

	var byIssuer []FederatedCredential
	for _, c := range creds {
		if c.Issuer == iss {
			byIssuer = append(byIssuer, c)
		}
	}
	if len(byIssuer) == 0 {
		return refuse("invalid_client", CodeNoIssuerMatch, "No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", iss, workloadIdentityDoc)
	}

	kid, _ := unverified.Header["kid"].(string)
	key, aerr := s.issuers.key(ctx, iss, kid)
	if aerr != nil {
		return aerr
	}
	if _, err := parser.ParseWithClaims(assertion, &assertionClaims{}, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return refuse("invalid_client", CodeInvalidSignature, "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s']", kid)
	}

	now := time.Now().UTC()
	validFrom := time.Unix(0, 0).UTC()
	if claims.NotBefore != nil {
		validFrom = claims.NotBefore.UTC()
	}
	if claims.ExpiresAt == nil {
		return refuse("invalid_request", CodeMalformedAssertion, "JWT token is invalid or malformed. The 'exp' claim is missing.")
	}
	expiry := claims.ExpiresAt.UTC()
	if now.After(expiry.Add(skew)) || now.Before(validFrom.Add(-skew)) {
		const layout = "2006-01-02T15:04:05.0000000Z"
		return refuse("invalid_client", CodeAssertionTimeRange, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .", now.Format(layout), validFrom.Format(layout), expiry.Format(layout))
	}

	var bySubject []FederatedCredential
	for _, c := range byIssuer {
		if c.Subject == sub {
			bySubject = append(bySubject, c)
		}
	}
	if len(bySubject) == 0 {
		return refuse("invalid_client", CodeNoSubjectMatch, "No matching federated identity record found for presented assertion subject '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", sub, workloadIdentityDoc)
	}
	for _, c := range bySubject {
		for _, a := range c.Audiences {
			if slices.Contains(aud, a) {
				return nil
			}
		}
	}
	return refuse("invalid_client", CodeNoFederatedRecordMatch, "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. %s", iss, sub, strings.Join(aud, ","), workloadIdentityDoc)
}
