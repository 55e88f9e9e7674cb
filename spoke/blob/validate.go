package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Reasons of a Result. They are the strings of the spoke API's reason
// constants (apis/backup/v1alpha1), repeated here so that this package needs
// no Kubernetes module; a test keeps them equal.
const (
	ReasonAuthenticationFailed = "AuthenticationFailed"
	ReasonAuthorizationFailed  = "AuthorizationFailed"
	ReasonContainerNotFound    = "ContainerNotFound"
	ReasonUnreachable          = "Unreachable"
	ReasonInvalidConfiguration = "InvalidConfiguration"
	ReasonEndpointNotAllowed   = "EndpointNotAllowed"
	ReasonValidationSucceeded  = "ValidationSucceeded"
)

// ProbeFolder is where Validate writes its probe blobs, under the target's prefix.
const ProbeFolder = "lifeboat/v1/probes"

// validationRetry keeps a failing validation short: its outcome is reported
// and the target is checked again later anyway.
var validationRetry = policy.RetryOptions{MaxRetries: 2, RetryDelay: 250 * time.Millisecond, MaxRetryDelay: 2 * time.Second, TryTimeout: 30 * time.Second}

// Result is the outcome of a validation, ready for a BackupTarget's status.
type Result struct {
	// Valid is true when the probe blob was written, read back and deleted.
	Valid bool
	// Reason is one of the Reason constants.
	Reason string
	// Message says what happened and, on failure, what to fix.
	Message string
	// Checked is when the validation ended.
	Checked time.Time
}

// Validate builds the target's client and validates it; a Config that cannot
// work is reported with the ConfigError's reason, before any token is fetched.
func Validate(ctx context.Context, cfg Config, opts ...Option) Result {
	c, err := New(cfg, opts...)
	if err != nil {
		reason := ReasonInvalidConfiguration
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Reason != "" {
			reason = ce.Reason
		}
		return Result{Reason: reason, Message: err.Error(), Checked: time.Now()}
	}
	return c.Validate(ctx)
}

// Validate checks that the target works for this identity: it reads the token
// file, gets an Entra ID token for Azure Storage, reads the container's
// properties, and writes, reads back and deletes a probe blob under
// <prefix>/lifeboat/v1/probes/. A failure is classified by Reason with a
// message that says what to fix.
func (c *Client) Validate(ctx context.Context) Result {
	if _, ok := ctx.Deadline(); !ok && c.validation > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.validation)
		defer cancel()
	}
	ctx = policy.WithRetryOptions(ctx, validationRetry)
	res := c.validate(ctx)
	res.Checked = time.Now()
	return res
}

func (c *Client) validate(ctx context.Context) Result {
	claims, res := c.readToken(ctx)
	if res != nil {
		return *res
	}

	// The same request as azblob's, CAE included, so that the token is cached for the probe.
	tctx, failures := withTransportFailures(ctx)
	if _, err := c.cred.GetToken(tctx, policy.TokenRequestOptions{Scopes: []string{storageScope}, EnableCAE: true}); err != nil {
		return c.authenticationResult(err, failures.last(), claims)
	}

	container := c.svc.ServiceClient().NewContainerClient(c.cfg.Container)
	if _, err := container.GetProperties(ctx, nil); err != nil {
		return c.storageResult(opReadContainer, err)
	}

	var random [16]byte
	_, _ = rand.Read(random[:])
	probe := ProbeFolder + "/" + hex.EncodeToString(random[:])
	payload := fmt.Appendf(nil, "lifeboat probe %x written %s by %s\n", random, time.Now().UTC().Format(time.RFC3339Nano), c.cfg.ClientID)
	if _, err := c.Upload(ctx, probe, bytes.NewReader(payload)); err != nil {
		return c.storageResult(opWrite, err)
	}
	readBack, readErr := c.readAll(ctx, probe)
	// Delete whatever the read found, so that a failed check leaves nothing behind.
	deleteErr := c.Delete(ctx, probe)
	switch {
	case readErr != nil:
		return c.storageResult(opRead, readErr)
	case !bytes.Equal(readBack, payload):
		return Result{Reason: ReasonInvalidConfiguration, Message: fmt.Sprintf(
			"the probe blob %s read back from %s differs from what was written (%d bytes written, %d read): the endpoint does not behave like Azure Blob Storage",
			c.full(probe), c.where(), len(payload), len(readBack))}
	case deleteErr != nil:
		return c.storageResult(opDelete, deleteErr)
	}
	return Result{Valid: true, Reason: ReasonValidationSucceeded, Message: fmt.Sprintf(
		"identity %s wrote, read and deleted the probe blob %s in %s", c.cfg.ClientID, c.full(probe), c.where())}
}

func (c *Client) readAll(ctx context.Context, name string) ([]byte, error) {
	rc, err := c.Download(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 1<<20))
}

// tokenClaims are the claims of the service-account token that Entra ID matches
// against the identity's federated credentials.
type tokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience audience `json:"aud"`
	Expiry   float64  `json:"exp"`
}

type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// readToken reads the claims of the service-account token, from the
// assertion or the token file, or says why it cannot be used.
func (c *Client) readToken(ctx context.Context) (*tokenClaims, *Result) {
	invalid := func(format string, args ...any) (*tokenClaims, *Result) {
		return nil, &Result{Reason: ReasonInvalidConfiguration, Message: fmt.Sprintf(format, args...)}
	}
	var token string
	if a := c.cfg.Assertion; a != nil {
		t, err := a.Token(ctx)
		if err != nil {
			return invalid("could not get a service-account token for subject %s: %v", a.Subject, err)
		}
		token = strings.TrimSpace(t)
	} else {
		path := c.cfg.TokenFilePath
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return invalid("the service-account token file %s does not exist: the pod needs the Azure Workload Identity projected token (label azure.workload.identity/use=true, or a projected volume with audience api://AzureADTokenExchange)", path)
		case errors.Is(err, fs.ErrPermission):
			return invalid("the service-account token file %s is not readable by the spoke: %v", path, err)
		case err != nil:
			return invalid("reading the service-account token file %s: %v", path, err)
		}
		token = strings.TrimSpace(string(b))
	}
	origin := c.tokenOrigin()
	if token == "" {
		return invalid("%s is empty", origin)
	}
	parts := strings.Split(token, ".")
	var claims tokenClaims
	if len(parts) != 3 {
		return invalid("%s does not hold a JWT", origin)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil {
		return invalid("%s does not hold a JWT: %v", origin, err)
	}
	return &claims, nil
}

// tokenOrigin names where the service-account token comes from, for messages.
func (c *Client) tokenOrigin() string {
	if c.cfg.Assertion != nil {
		return "the service-account token of subject " + c.cfg.Assertion.Subject
	}
	return "the service-account token in " + c.cfg.TokenFilePath
}

// full is the full blob name of a relative name, for messages.
func (c *Client) full(name string) string { return c.join(name) }

// where names the container, account and endpoint for messages.
func (c *Client) where() string {
	return fmt.Sprintf("container %q of storage account %q (%s)", c.cfg.Container, c.cfg.StorageAccount, c.cfg.serviceURL)
}
