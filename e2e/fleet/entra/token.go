/*
Copyright 2026 The Lifeboat Authors.

Licensed under the Apache License, Version 2.0.
*/
package entra

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// STSIssuerPrefix starts the issuer of every v1.0 access token: https://sts.windows.net/{tenant}/.
const STSIssuerPrefix = "https://sts.windows.net/"

// backdate is how far before issuance iat and nbf are set, as Entra does, so
// that services with a slightly slow clock accept a fresh token.
const backdate = 5 * time.Minute

// Claims are the claims of an access token issued by the stand-in.
type Claims struct {
	Audience  string    // the resource, e.g. https://storage.azure.com
	Issuer    string    // https://sts.windows.net/{tenant}/
	TenantID  string    // tid
	AppID     string    // appid: the client id
	ObjectID  string    // oid: the service principal's object id
	Subject   string    // sub: the object id, for app tokens
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ExpiresAt time.Time // exp
}

// accessTokenClaims are the claims Verify reads.
type accessTokenClaims struct {
	jwt.RegisteredClaims
	AppID string `json:"appid"`
	OID   string `json:"oid"`
	TID   string `json:"tid"`
}

// mint signs a v1.0 app-only access token for app and resource.
func (s *Server) mint(app Application, resource string, lifetime time.Duration) (string, error) {
	now := time.Now()
	iss := STSIssuerPrefix + app.TenantID + "/"
	// Entra writes aud as a string; Azurite, like some resources, rejects an array.
	claims := jwt.MapClaims{
		"aud":      resource,
		"iss":      iss,
		"iat":      now.Add(-backdate).Unix(),
		"nbf":      now.Add(-backdate).Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"appid":    app.ClientID,
		"appidacr": "2", // authenticated with an assertion
		"azp":      app.ClientID,
		"azpacr":   "2",
		"idp":      iss,
		"idtyp":    "app",
		"oid":      app.ObjectID,
		"sub":      app.ObjectID,
		"tid":      app.TenantID,
		"uti":      strings.ReplaceAll(uuid.NewString(), "-", "")[:22],
		"ver":      "1.0",
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = s.kid
	t.Header["x5t"] = s.kid
	return t.SignedString(s.key)
}

// Kinds of TokenError, for errors.Is.
var (
	ErrMalformed   = errors.New("malformed token")
	ErrSignature   = errors.New("invalid signature")
	ErrClaims      = errors.New("missing claims")
	ErrIssuer      = errors.New("wrong issuer")
	ErrAudience    = errors.New("wrong audience")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
)

// TokenError is why a Verifier refused a token. Its message is the text Azure
// Storage puts in AuthenticationErrorDetail for the same failure.
type TokenError struct {
	Kind   error
	Detail string
}

func (e *TokenError) Error() string { return e.Detail }
func (e *TokenError) Unwrap() error { return e.Kind }

func tokenError(kind error, format string, args ...any) *TokenError {
	return &TokenError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Verifier checks access tokens the way a resource such as Azure Storage does:
// signature by one of the stand-in's keys, an https://sts.windows.net/{tid}/
// issuer, nbf/exp with a clock skew, and optionally the audience.
type Verifier struct {
	keys      map[string]*rsa.PublicKey
	audiences []string
	// Leeway is the accepted clock skew; Azure Storage allows 5 minutes.
	Leeway time.Duration
}

// NewVerifier checks tokens signed by keys (by kid); audiences, when given, are the accepted aud values.
func NewVerifier(keys map[string]*rsa.PublicKey, audiences ...string) *Verifier {
	return &Verifier{keys: keys, audiences: audiences, Leeway: 5 * time.Minute}
}

// Verify checks token and returns its claims.
func (v *Verifier) Verify(token string) (*Claims, error) {
	var c accessTokenClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := v.keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("key %q not found", kid)
	})
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, tokenError(ErrMalformed, "The token is malformed: %v", err)
	case err != nil:
		return nil, tokenError(ErrSignature, "Signature validation failed. %v", err)
	}
	if c.TID == "" || c.ExpiresAt == nil || c.AppID == "" || c.OID == "" {
		return nil, tokenError(ErrClaims, "The token has no tid, appid, oid or exp claim.")
	}
	if c.Issuer != STSIssuerPrefix+c.TID+"/" {
		return nil, tokenError(ErrIssuer, "Issuer validation failed. Issuer did not match.")
	}
	now := time.Now()
	if now.After(c.ExpiresAt.Add(v.Leeway)) {
		return nil, tokenError(ErrExpired, "Lifetime validation failed. The token is expired.")
	}
	if c.NotBefore != nil && now.Before(c.NotBefore.Add(-v.Leeway)) {
		return nil, tokenError(ErrNotYetValid, "Lifetime validation failed. The token is not yet valid.")
	}
	aud := ""
	if len(c.Audience) > 0 {
		aud = c.Audience[0]
	}
	if len(v.audiences) > 0 && !slices.Contains(v.audiences, aud) {
		return nil, tokenError(ErrAudience, "Audience validation failed. Audience did not match.")
	}
	claims := &Claims{
		Audience:  aud,
		Issuer:    c.Issuer,
		TenantID:  c.TID,
		AppID:     c.AppID,
		ObjectID:  c.OID,
		Subject:   c.Subject,
		ExpiresAt: c.ExpiresAt.Time,
	}
	if c.IssuedAt != nil {
		claims.IssuedAt = c.IssuedAt.Time
	}
	if c.NotBefore != nil {
		claims.NotBefore = c.NotBefore.Time
	}
	return claims, nil
}
