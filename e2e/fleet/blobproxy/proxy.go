/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/

// Package blobproxy is the authorizing proxy in front of Azurite: it plays
// Azure Storage's front end, which checks every request's Entra bearer token
// (signature included, which Azurite does not check) and the caller's Azure
// role assignments, so that one identity may use a container and another may
// not. Allowed requests go to Azurite unchanged, bodies streamed.
//
// Authorization follows Azure RBAC for the two blob data roles:
//   - A role is assigned to a principal (the service principal's object id;
//     the app's client id is accepted as well) on an account, or on one
//     container of it.
//   - Storage Blob Data Reader: get container properties/metadata/ACL, list
//     blobs, read blobs; Storage Blob Data Contributor also creates, deletes
//     and leases containers, and writes and deletes blobs. Create Container is
//     allowed to a Contributor assigned on the account or on that container.
//   - List Containers and Get User Delegation Key need the role on the account,
//     as in Azure (a container-scoped assignment does not cover the account).
//   - Get Account Information is answered for any role assignment in the account.
//   - Service properties and stats, Set Container ACL, blob tags, find blobs by
//     tags and immutability policies are refused: neither role has those
//     permissions. Shared Key and SAS requests are refused as on an account
//     with shared key access disabled.
package blobproxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/entra"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
)

// Verifier checks an Entra access token; *entra.Verifier is one.
type Verifier interface {
	Verify(token string) (*entra.Claims, error)
}

// storageAudiences are the aud values Azure Storage accepts besides an account's own endpoint.
var storageAudiences = []string{"https://storage.azure.com", "https://storage.azure.com/"}

type assignment struct {
	principal string
	account   string
	container string // "" for the whole account
	role      Role
}

// Proxy is the authorizing proxy. Grant and Revoke are safe for concurrent use, also while it serves.
type Proxy struct {
	upstream *url.URL
	rp       *httputil.ReverseProxy
	verifier Verifier
	ca       *pki.CA
	serving  tls.Certificate

	mu          sync.RWMutex
	assignments map[assignment]*Condition // nil: unconditional
	log         func(string)
	writeDelay  time.Duration

	srv *http.Server
	url string
}

// New creates a proxy to upstreamURL (only its scheme and host are used;
// request paths are forwarded as they are), trusting upstreamCAs for its TLS,
// that accepts tokens verifier accepts. Call Start to serve.
func New(upstreamURL string, upstreamCAs *x509.CertPool, verifier Verifier) (*Proxy, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("blobproxy: bad upstream URL %q", upstreamURL)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("blobproxy: upstream %q must be https: Azurite refuses bearer tokens over http", upstreamURL)
	}
	upstream := &url.URL{Scheme: u.Scheme, Host: u.Host}
	ca, err := pki.NewCA("lifeboat-blobproxy-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.Serving("blobproxy")
	if err != nil {
		return nil, err
	}
	serving, err := kp.TLS()
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, verifier: verifier, ca: ca, serving: serving, assignments: map[assignment]*Condition{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = upstream.Host
		},
		Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     &tls.Config{RootCAs: upstreamCAs, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.logf("%s %s: upstream unreachable: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return p, nil
}

// Start listens on a free port of 127.0.0.1 and serves until Close.
func (p *Proxy) Start() error {
	if p.srv != nil {
		return errors.New("blobproxy: already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.url = "https://" + ln.Addr().String()
	p.srv = &http.Server{
		Handler:           p,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{p.serving}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = p.srv.ServeTLS(ln, "", "") }()
	return nil
}

// Close stops serving and drops every connection.
func (p *Proxy) Close() error {
	if t, ok := p.rp.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if p.srv == nil {
		return nil
	}
	return p.srv.Close()
}

// URL is https://127.0.0.1:PORT.
func (p *Proxy) URL() string { return p.url }

// AccountURL is the path-style service URL of an account behind the proxy, for azblob.NewClient.
func (p *Proxy) AccountURL(account string) string { return p.url + "/" + account }

// CACertPEM is the CA of the proxy's serving certificate.
func (p *Proxy) CACertPEM() []byte { return p.ca.CertPEM() }

// CAPool trusts the proxy's serving certificate.
func (p *Proxy) CAPool() *x509.CertPool { return p.ca.Pool() }

// HTTPClient trusts the proxy; usable as an azcore Transport.
func (p *Proxy) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: p.CAPool(), MinVersion: tls.VersionTLS12}},
	}
}

// SetLogger receives one line per refused request and upstream failure (e.g. t.Log).
func (p *Proxy) SetLogger(log func(string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = log
}

func (p *Proxy) logf(format string, args ...any) {
	p.mu.RLock()
	log := p.log
	p.mu.RUnlock()
	if log != nil {
		log(fmt.Sprintf("blobproxy: "+format, args...))
	}
}

// Grant assigns role to principal (object id or client id) on account, or on
// one container of it when container is not empty.
func (p *Proxy) Grant(principal, account, container string, role Role) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.assignments[assignment{strings.ToLower(principal), account, container, role}] = nil
}

// GrantWithCondition assigns role as Grant does, with an ABAC condition: the
// assignment allows only what cond allows. It replaces the assignment's
// condition, if it had one.
func (p *Proxy) GrantWithCondition(principal, account, container string, role Role, cond Condition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.assignments[assignment{strings.ToLower(principal), account, container, role}] = &cond
}

// Revoke removes a role assignment made with Grant.
func (p *Proxy) Revoke(principal, account, container string, role Role) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.assignments, assignment{strings.ToLower(principal), account, container, role})
}

// allowed decides op for the principal of claims.
func (p *Proxy) allowed(c *entra.Claims, op operation) bool {
	if op.perm == unsupportedRequest && !op.anyRole {
		return false
	}
	principals := map[string]bool{strings.ToLower(c.ObjectID): true, strings.ToLower(c.AppID): true}
	can := func(perm permission, container string, accountScope bool) bool {
		p.mu.RLock()
		defer p.mu.RUnlock()
		for a, cond := range p.assignments {
			if !principals[a.principal] || a.account != op.account {
				continue
			}
			if cond != nil && !cond.allows(perm, op.blob) {
				continue // as in Azure, the assignment does not apply; another may
			}
			if op.anyRole {
				return true
			}
			if a.container != "" && (accountScope || a.container != container) {
				continue
			}
			if a.role.has(perm) {
				return true
			}
		}
		return false
	}
	if !can(op.perm, op.container, op.accountScope) {
		return false
	}
	return op.copySource == "" || can(blobsRead, op.copySource, false)
}

// ServeHTTP authenticates, authorizes and forwards one request.
// SetWriteDelay makes every write (PUT, POST) wait d before it reaches
// storage, as a slow or distant storage account would; 0 turns it off.
func (p *Proxy) SetWriteDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeDelay = d
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		p.mu.RLock()
		d := p.writeDelay
		p.mu.RUnlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	op := classify(r)
	if op.account == "" {
		writeError(w, r, http.StatusBadRequest, "InvalidUri", "The requested URI does not represent any resource on the server.", "", "")
		return
	}
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	switch {
	case strings.HasPrefix(auth, "SharedKey ") || q.Get("sig") != "":
		p.logf("%s %s: %s refused: shared key and SAS are disabled", r.Method, r.URL.Path, op.name)
		writeError(w, r, http.StatusForbidden, "KeyBasedAuthenticationNotPermitted", "Key based authentication is not permitted on this storage account.", "", "")
		return
	case auth == "":
		writeError(w, r, http.StatusUnauthorized, "NoAuthenticationInformation", "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.", "", "common")
		return
	case !strings.HasPrefix(auth, "Bearer "):
		writeError(w, r, http.StatusUnauthorized, "InvalidAuthenticationInfo", "Authentication information is not given in the correct format. Check the value of Authorization header.", "", "common")
		return
	}
	token := strings.TrimPrefix(auth, "Bearer ")
	claims, err := p.verifier.Verify(token)
	if err == nil && !validAudience(claims.Audience, op.account) {
		err = &entra.TokenError{Kind: entra.ErrAudience, Detail: "Audience validation failed. Audience did not match."}
	}
	if err != nil {
		p.logf("%s %s: %s refused: %v", r.Method, r.URL.Path, op.name, err)
		writeError(w, r, http.StatusUnauthorized, "InvalidAuthenticationInfo", "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.", err.Error(), unverifiedTenant(token))
		return
	}
	if !p.allowed(claims, op) {
		need := string(op.perm)
		switch {
		case op.anyRole:
			need = "any role assignment in account " + op.account
		case op.perm == unsupportedRequest:
			need = "this operation (no blob data role has it)"
		}
		p.logf("%s %s: %s refused for %s (app %s): no role assignment allows %s", r.Method, r.URL.Path, op.name, claims.ObjectID, claims.AppID, need)
		writeError(w, r, http.StatusForbidden, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.", "", "")
		return
	}
	p.rp.ServeHTTP(w, r)
}

func validAudience(aud, account string) bool {
	for _, a := range storageAudiences {
		if aud == a {
			return true
		}
	}
	own := "https://" + account + ".blob.core.windows.net"
	return aud == own || aud == own+"/"
}

// unverifiedTenant reads tid from a token that failed verification, for the
// WWW-Authenticate challenge, which names the tenant to ask.
func unverifiedTenant(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var c struct {
				TID string `json:"tid"`
			}
			if json.Unmarshal(b, &c) == nil && c.TID != "" && !strings.ContainsAny(c.TID, " \"/") {
				return c.TID
			}
		}
	}
	return "common"
}

// writeError answers like Azure Storage: an XML error document (no body for
// HEAD), the code in x-ms-error-code, and for 401 a Bearer challenge.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message, detail, challengeTenant string) {
	id := uuid.NewString()
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0")
	h.Set("x-ms-request-id", id)
	h.Set("x-ms-error-code", code)
	if v := r.Header.Get("x-ms-version"); v != "" {
		h.Set("x-ms-version", v)
	}
	if v := r.Header.Get("x-ms-client-request-id"); v != "" {
		h.Set("x-ms-client-request-id", v)
	}
	if challengeTenant != "" {
		h.Set("WWW-Authenticate", "Bearer authorization_uri=https://login.microsoftonline.com/"+challengeTenant+"/oauth2/authorize resource_id=https://storage.azure.com")
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Error><Code>`)
	b.WriteString(code)
	b.WriteString(`</Code><Message>`)
	b.WriteString(xmlEscape(message))
	b.WriteString("\nRequestId:" + id + "\nTime:" + time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"))
	b.WriteString(`</Message>`)
	if detail != "" {
		b.WriteString(`<AuthenticationErrorDetail>` + xmlEscape(detail) + `</AuthenticationErrorDetail>`)
	}
	b.WriteString(`</Error>`)
	h.Set("Content-Length", fmt.Sprint(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
