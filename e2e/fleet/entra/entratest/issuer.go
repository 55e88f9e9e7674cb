/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/

// Package entratest is a small OIDC token issuer for tests of the Entra
// stand-in and what sits behind it: it publishes a discovery document and
// JWKS over TLS, as kube-apiserver does for service-account tokens, and mints
// tokens with any claims. Suites that run a real kube-apiserver use its
// service-account issuer instead.
package entratest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a TLS OIDC issuer on 127.0.0.1.
type Issuer struct {
	srv *httptest.Server

	mu    sync.Mutex
	key   crypto.Signer
	alg   jwt.SigningMethod
	extra []crypto.Signer // keys still published after a rotation

	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
}

// NewIssuer starts an issuer that signs with RS256 (ES256 when es256 is true);
// it stops when the test ends.
func NewIssuer(t testing.TB, es256 bool) *Issuer {
	t.Helper()
	i := &Issuer{}
	i.rotate(es256)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		i.discoveryHits.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                i.URL(),
			"jwks_uri":                              i.URL() + "/openid/v1/jwks",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		i.jwksHits.Add(1)
		// Like kube-apiserver: the key set is application/jwk-set+json, and a
		// client that does not accept that gets 406.
		if a := r.Header.Get("Accept"); a != "" && !strings.Contains(a, "application/jwk-set+json") && !strings.Contains(a, "*/*") {
			http.Error(w, "not acceptable", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": i.jwks()})
	})
	i.srv = httptest.NewTLSServer(mux)
	t.Cleanup(i.srv.Close)
	return i
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// URL is the issuer, https://127.0.0.1:PORT.
func (i *Issuer) URL() string { return i.srv.URL }

// CACertPEM is the certificate to trust for the issuer's TLS.
func (i *Issuer) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.srv.Certificate().Raw})
}

// DiscoveryFetches is how many times the discovery document was read.
func (i *Issuer) DiscoveryFetches() int { return int(i.discoveryHits.Load()) }

// JWKSFetches is how many times the key set was read.
func (i *Issuer) JWKSFetches() int { return int(i.jwksHits.Load()) }

// Rotate switches to a new signing key with a new kid; the old key stays published
// unless dropOld is true.
func (i *Issuer) Rotate(dropOld bool) {
	i.mu.Lock()
	old, es := i.key, i.alg == jwt.SigningMethodES256
	i.mu.Unlock()
	i.rotate(es)
	i.mu.Lock()
	defer i.mu.Unlock()
	if dropOld {
		i.extra = nil
	} else {
		i.extra = append(i.extra, old)
	}
}

func (i *Issuer) rotate(es256 bool) {
	var key crypto.Signer
	var err error
	alg := jwt.SigningMethod(jwt.SigningMethodRS256)
	if es256 {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		alg = jwt.SigningMethodES256
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.key, i.alg = key, alg
}

func kidOf(key crypto.Signer) string {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return "rsa-" + k.N.Text(36)[:12]
	case *ecdsa.PublicKey:
		return "ec-" + k.X.Text(36)[:12]
	}
	return ""
}

func (i *Issuer) jwks() []map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []map[string]any
	for _, key := range append([]crypto.Signer{i.key}, i.extra...) {
		b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }
		switch k := key.Public().(type) {
		case *rsa.PublicKey:
			out = append(out, map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kidOf(key), "n": b64(k.N), "e": b64(big.NewInt(int64(k.E)))})
		case *ecdsa.PublicKey:
			out = append(out, map[string]any{"kty": "EC", "use": "sig", "alg": "ES256", "kid": kidOf(key), "crv": "P-256", "x": b64(k.X), "y": b64(k.Y)})
		}
	}
	return out
}

// Token mints a token like a projected service-account token: iss, sub, aud,
// iat, nbf and exp = now + ttl (a negative ttl gives an expired token).
func (i *Issuer) Token(subject string, audiences []string, ttl time.Duration) string {
	now := time.Now()
	return i.Sign(jwt.MapClaims{
		"iss": i.URL(),
		"sub": subject,
		"aud": audiences,
		"iat": now.Add(min(ttl, 0) - time.Minute).Unix(),
		"nbf": now.Add(min(ttl, 0) - time.Minute).Unix(),
		"exp": now.Add(ttl).Unix(),
	})
}

// Sign signs claims with the current key.
func (i *Issuer) Sign(claims jwt.MapClaims) string {
	i.mu.Lock()
	key, alg := i.key, i.alg
	i.mu.Unlock()
	return sign(key, alg, kidOf(key), claims)
}

// Forge signs claims with a key the issuer does not publish, under the current
// key's kid: the signature does not verify.
func (i *Issuer) Forge(claims jwt.MapClaims) string {
	i.mu.Lock()
	key, alg := i.key, i.alg
	i.mu.Unlock()
	var other crypto.Signer
	var err error
	if alg == jwt.SigningMethodES256 {
		other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		other, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	return sign(other, alg, kidOf(key), claims)
}

func sign(key crypto.Signer, alg jwt.SigningMethod, kid string, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(alg, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("signing a test token: %v", err))
	}
	return s
}

// WriteToken writes token to dir/name, as the kubelet projects it, and returns the path.
func WriteToken(t testing.TB, dir, name, token string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
