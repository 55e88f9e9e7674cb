package blob_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
)

// challengingEndpoint is a blob endpoint that answers every request with 401
// and a WWW-Authenticate challenge, and keeps the bearer tokens it was sent.
type challengingEndpoint struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newChallengingEndpoint(t *testing.T, challenge string) *challengingEndpoint {
	e := &challengingEndpoint{}
	e.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		e.mu.Lock()
		e.tokens = append(e.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		e.mu.Unlock()
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("x-ms-error-code", "InvalidAuthenticationInfo")
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(e.Close)
	return e
}

// audiences are the audiences of the tokens the endpoint received.
func (e *challengingEndpoint) audiences(g *WithT) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, tok := range e.tokens {
		claims, err := azure.entra.VerifyAccessToken(tok)
		g.Expect(err).NotTo(HaveOccurred(), "the endpoint got something that is not a token of the Entra stand-in")
		out = append(out, claims.Audience)
	}
	return out
}

// A storage endpoint's 401 challenge cannot make the spoke ask for, or send,
// a token of another resource, nor crash it (azblob v1.8.0 indexes the fourth
// part of authorization_uri): every operation ends in an error.
func TestChallengesGetNoOtherTokenAndNoPanic(t *testing.T) {
	for name, challenge := range map[string]string{
		"another resource":        `Bearer authorization_uri="https://login.microsoftonline.com/` + tenantID + `/oauth2/authorize" resource_id="https://management.azure.com"`,
		"short authorization_uri": `Bearer authorization_uri="https://x" resource_id="https://storage.azure.com"`,
		"both":                    `Bearer authorization_uri="https://x" resource_id="https://graph.microsoft.com"`,
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			endpoint := newChallengingEndpoint(t, challenge)
			roots := azure.roots.Clone()
			roots.AddCert(endpoint.Certificate())
			id := newIdentity(t, true)
			cfg := id.config("backups", "")
			cfg.Endpoint = endpoint.URL + "/" + azurite.Account
			c, err := blob.New(cfg, testOptions(blob.WithRootCAs(roots), blob.WithAllowedEndpoints(cfg.Endpoint))...)
			g.Expect(err).NotTo(HaveOccurred())

			operations := map[string]func() error{
				"validate": func() error {
					if res := c.Validate(ctx); !res.Valid {
						return errors.New(res.Reason + ": " + res.Message)
					}
					return nil
				},
				"list":   func() error { _, err := c.List(ctx, "lifeboat/"); return err },
				"get":    func() error { _, err := c.Get(ctx, "lifeboat/v1/x"); return err },
				"put":    func() error { _, err := c.Put(ctx, "lifeboat/v1/x", strings.NewReader("data")); return err },
				"delete": func() error { return c.Delete(ctx, "lifeboat/v1/x") },
				"exists": func() error { _, err := c.Exists(ctx, "lifeboat/v1/x"); return err },
			}
			for op, call := range operations {
				var err error
				g.Expect(func() { err = call() }).NotTo(Panic(), op)
				g.Expect(err).To(HaveOccurred(), op)
				g.Expect(errors.As(err, new(*panics.Error))).To(BeFalse(), "%s: the SDK panicked: %v", op, err)
			}

			g.Expect(endpoint.audiences(g)).To(And(Not(BeEmpty()), HaveEach("https://storage.azure.com")),
				"the endpoint got only storage tokens")
			var resources []string
			for _, x := range azure.entra.Exchanges() {
				if x.ClientID == id.app.ClientID {
					resources = append(resources, x.Resource)
				}
			}
			g.Expect(resources).To(And(Not(BeEmpty()), HaveEach("https://storage.azure.com")),
				"the identity asked Entra ID only for storage tokens")
		})
	}
}

// panickingTransport panics on every request, as a bug in the SDK would.
type panickingTransport struct{}

func (panickingTransport) Do(*http.Request) (*http.Response, error) {
	panic("the transport broke")
}

// A panic anywhere in a storage request (here in the credential's token
// request, which the storage pipeline makes) is the request's error.
func TestPanicInTheSDKIsAnError(t *testing.T) {
	g := NewWithT(t)
	id := newIdentity(t, true)
	cfg := id.config("backups", "")
	cfg.Endpoint = ""
	c, err := blob.New(cfg, testOptions(blob.WithTransport(panickingTransport{}))...)
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	g.Expect(func() { names, err = c.List(context.Background(), "lifeboat/") }).NotTo(Panic())
	g.Expect(names).To(BeEmpty())
	var pe *panics.Error
	g.Expect(errors.As(err, &pe)).To(BeTrue(), "error: %v", err)
	g.Expect(err.Error()).To(ContainSubstring("the transport broke"))
}
