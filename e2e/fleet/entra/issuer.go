/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package entra

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// keyCacheTTL is how long an issuer's keys are used without asking again; a
// token with an unknown kid makes the server ask at once, as Entra does after
// a key rotation.
const keyCacheTTL = 5 * time.Minute

// issuerKeys fetches and caches the signing keys of federated token issuers.
type issuerKeys struct {
	mu      sync.Mutex
	pools   map[string]*x509.CertPool // by issuer URL without trailing slash
	clients map[string]*http.Client
	cache   map[string]*keySet
}

type keySet struct {
	mu      sync.Mutex // held while fetching, so one issuer is asked once at a time
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

func newIssuerKeys() *issuerKeys {
	return &issuerKeys{pools: map[string]*x509.CertPool{}, clients: map[string]*http.Client{}, cache: map[string]*keySet{}}
}

func issuerKey(iss string) string { return strings.TrimSuffix(iss, "/") }

func (k *issuerKeys) trust(issuerURL string, caPEM []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := issuerKey(issuerURL)
	pool, ok := k.pools[id]
	if !ok {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("entra: no certificate in the CA PEM for issuer %s", issuerURL)
	}
	k.pools[id] = pool
	if c, ok := k.clients[id]; ok {
		c.CloseIdleConnections()
		delete(k.clients, id)
	}
	return nil
}

func (k *issuerKeys) client(iss string) *http.Client {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := issuerKey(iss)
	if c, ok := k.clients[id]; ok {
		return c
	}
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: k.pools[id], MinVersion: tls.VersionTLS12},
		},
		// Entra does not follow an issuer's redirects to another place.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	k.clients[id] = c
	return c
}

func (k *issuerKeys) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.clients {
		c.CloseIdleConnections()
	}
}

func (k *issuerKeys) set(iss string) *keySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, ok := k.cache[iss]
	if !ok {
		ks = &keySet{}
		k.cache[iss] = ks
	}
	return ks
}

// key returns the issuer's public key with id kid (with no kid: the only key).
func (k *issuerKeys) key(ctx context.Context, iss, kid string) (crypto.PublicKey, *aadError) {
	ks := k.set(iss)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if time.Since(ks.fetched) < keyCacheTTL {
		if key := pick(ks.keys, kid); key != nil {
			return key, nil
		}
	}
	keys, err := k.fetch(ctx, iss)
	if err != nil {
		return nil, refuse("invalid_request", CodeIssuerMetadata, "Request to External OIDC endpoint failed. (%v)", err)
	}
	ks.keys, ks.fetched = keys, time.Now()
	if key := pick(keys, kid); key != nil {
		return key, nil
	}
	return nil, refuse("invalid_client", CodeSigningKeyNotFound, "The certificate with identifier %s used to sign the federated credential could not be found in the metadata of identity provider %s. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.", kid, iss)
}

func pick(keys map[string]crypto.PublicKey, kid string) crypto.PublicKey {
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k
		}
	}
	return keys[kid]
}

// fetch reads <iss>/.well-known/openid-configuration and then its jwks_uri.
func (k *issuerKeys) fetch(ctx context.Context, iss string) (map[string]crypto.PublicKey, error) {
	c := k.client(iss)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, c, issuerKey(iss)+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != iss {
		return nil, fmt.Errorf("the discovery document's issuer %q is not the token's issuer %q", doc.Issuer, iss)
	}
	if u, err := url.Parse(doc.JWKSURI); err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := getJSON(ctx, c, doc.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]crypto.PublicKey{}
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if key, err := j.publicKey(); err == nil {
			keys[j.Kid] = key
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("the issuer publishes no usable signing key")
	}
	return keys, nil
}

func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	// kube-apiserver answers 406 to a JWKS request that does not accept application/jwk-set+json.
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// jwk is one JSON Web Key (RFC 7517) of the kinds issuers sign tokens with.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (j jwk) publicKey() (crypto.PublicKey, error) {
	b64 := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N)
		if err != nil {
			return nil, err
		}
		e, err := b64(j.E)
		if err != nil || !e.IsInt64() {
			return nil, fmt.Errorf("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil {
			return nil, err
		}
		y, err := b64(j.Y)
		if err != nil {
			return nil, err
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
		if _, err := pub.ECDH(); err != nil { // rejects points not on the curve
			return nil, err
		}
		return pub, nil
	}
	return nil, fmt.Errorf("unsupported key type %q", j.Kty)
}
