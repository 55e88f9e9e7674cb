// Package satokens mints ServiceAccount tokens with the TokenRequest API.
package satokens

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/oauth2"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Source mints tokens of one ServiceAccount. It implements oauth2.TokenSource;
// Cached keeps each token until shortly before it expires.
type Source struct {
	// Tokens asks the API server for the tokens.
	Tokens kubernetes.Interface
	// Namespace and Name name the ServiceAccount.
	Namespace, Name string
	// Audiences of the tokens; empty is the API server's own.
	Audiences []string
	// Lifetime of each token; the API server grants at least 10 minutes.
	Lifetime time.Duration
}

// Token mints a new token.
func (s *Source) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := s.Tokens.CoreV1().ServiceAccounts(s.Namespace).CreateToken(ctx, s.Name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         s.Audiences,
		ExpirationSeconds: ptr.To(int64(s.Lifetime.Seconds())),
	}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking for a token of ServiceAccount %s/%s: %w", s.Namespace, s.Name, err)
	}
	return &oauth2.Token{AccessToken: tr.Status.Token, Expiry: tr.Status.ExpirationTimestamp.Time}, nil
}

// Cached is s with each token kept until early before it expires; it is safe
// for concurrent use.
func (s *Source) Cached(early time.Duration) oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(nil, s, early)
}
