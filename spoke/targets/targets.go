// Package targets turns BackupTargets into blob clients that sign in as the
// target's own identity with tokens of the target's own ServiceAccount.
package targets

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/satokens"
)

// Factory builds blob clients for BackupTargets. One spoke serves any number of
// identities: each target names its own client ID and tenant, and signs in
// with tokens of its own ServiceAccount (backupv1alpha1.TargetServiceAccount),
// so that an identity federated for one target's subject trusts no other.
type Factory struct {
	// Tokens mints the targets' ServiceAccount tokens (TokenRequest API).
	Tokens kubernetes.Interface
	// AuthorityHost overrides the cloud's Entra ID authority (default $AZURE_AUTHORITY_HOST).
	AuthorityHost string
	// RootCAs, when set, replaces the system roots (private clouds, the test fleet).
	RootCAs *x509.CertPool
	// AllowedEndpoints are private blob endpoints that this cluster's admin
	// trusts with the targets' tokens: a target may name one of them, or its
	// storage account's own URL in an Azure cloud, and nothing else.
	AllowedEndpoints Endpoints
	// Options are added to every client.
	Options []blob.Option
	// Secrets reads the targets' encryption key Secrets in lifeboat-system
	// (the manager's API reader: the spoke caches no Secret).
	Secrets client.Reader

	mu      sync.Mutex
	sources map[string]oauth2.TokenSource // by ServiceAccount name
}

// Federated tokens last assertionLifetime (the TokenRequest API's minimum is
// 10 minutes) and are replaced assertionEarly before they expire: Entra ID
// needs one only when a storage token is due, about once an hour.
const (
	assertionLifetime = 15 * time.Minute
	assertionEarly    = 5 * time.Minute
)

// Endpoints are blob endpoint URLs, a flag.Value that takes a URL or a
// comma-separated list each time it is set.
type Endpoints []string

func (e *Endpoints) String() string { return strings.Join(*e, ",") }

// Set adds the https URLs in v.
func (e *Endpoints) Set(v string) error {
	for raw := range strings.SplitSeq(v, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q is not a blob endpoint: want an https URL such as https://10.0.0.5:10000/myaccount, without credentials, query or fragment", raw)
		}
		*e = append(*e, raw)
	}
	return nil
}

// Config is the blob configuration of target.
func (f *Factory) Config(t *backupv1alpha1.BackupTarget) blob.Config {
	az, id := t.Spec.Azure, t.Spec.Identity
	return blob.Config{
		StorageAccount: az.StorageAccount,
		Container:      az.Container,
		Prefix:         az.Prefix,
		Endpoint:       az.Endpoint,
		Cloud:          blob.Cloud(az.Cloud),
		ClientID:       id.ClientID,
		TenantID:       id.TenantID,
		Assertion:      f.assertion(t.Name),
		AuthorityHost:  f.AuthorityHost,
	}
}

// assertion is the token source of target's ServiceAccount, shared by all of
// the target's clients so that a token is minted only when the last expires.
func (f *Factory) assertion(target string) *blob.ClientAssertion {
	name := backupv1alpha1.TargetServiceAccount(target)
	f.mu.Lock()
	src, ok := f.sources[name]
	if !ok {
		if f.sources == nil {
			f.sources = map[string]oauth2.TokenSource{}
		}
		src = (&satokens.Source{
			Tokens:    f.Tokens,
			Namespace: backupv1alpha1.TargetServiceAccountNamespace,
			Name:      name,
			Audiences: []string{blob.FederatedAudience},
			Lifetime:  assertionLifetime,
		}).Cached(assertionEarly)
		f.sources[name] = src
	}
	f.mu.Unlock()
	return &blob.ClientAssertion{
		Subject: backupv1alpha1.TargetSubject(target),
		Token: func(context.Context) (string, error) {
			tok, err := src.Token()
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		},
	}
}

func (f *Factory) options() []blob.Option {
	opts := append([]blob.Option{}, f.Options...)
	if f.RootCAs != nil {
		opts = append(opts, blob.WithRootCAs(f.RootCAs))
	}
	if len(f.AllowedEndpoints) > 0 {
		opts = append(opts, blob.WithAllowedEndpoints(f.AllowedEndpoints...))
	}
	return opts
}

// Client is a blob client for target.
func (f *Factory) Client(t *backupv1alpha1.BackupTarget) (*blob.Client, error) {
	return blob.New(f.Config(t), f.options()...)
}

// Validate checks that target works from this cluster: token, container, and a
// probe blob written, read back and deleted.
func (f *Factory) Validate(ctx context.Context, t *backupv1alpha1.BackupTarget) blob.Result {
	return blob.Validate(ctx, f.Config(t), f.options()...)
}

// SystemNamespace holds the objects the hub sends; they may use any target and
// any namespace. Objects elsewhere are a team's self-service.
const SystemNamespace = "lifeboat-system"

// Refusal is why a backup, restore or deletion may not use a target; Reason is
// one of the API's condition reasons and Message tells a person what to do.
type Refusal struct {
	Reason, Message string
}

func (r *Refusal) Error() string { return r.Message }

// Resolve gets the BackupTarget name for an object in namespace and checks that
// the object may use it: the target exists, its latest validation succeeded,
// for self-service objects (outside SystemNamespace) the target's
// allowedNamespaces selects namespace, and for an object the hub sent for a
// hub object (hub set, in SystemNamespace) a target the hub made belongs to
// that hub object's namespace. It returns a *Refusal when the object may not
// use the target, and other errors for retry.
func Resolve(ctx context.Context, c client.Client, namespace, name string, hub *backupv1alpha1.HubObjectReference) (*backupv1alpha1.BackupTarget, error) {
	t := &backupv1alpha1.BackupTarget{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &Refusal{backupv1alpha1.ReasonTargetNotFound, fmt.Sprintf("BackupTarget %q does not exist on this cluster", name)}
		}
		return nil, err
	}
	if owner, ok := t.Labels[backupv1alpha1.LabelHubNamespace]; ok && hub != nil && namespace == SystemNamespace && owner != string(hub.Namespace) {
		// Target names end in a hash of the location's namespace and name: another
		// tenant's location with a colliding name has overwritten this target.
		return nil, &Refusal{backupv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"BackupTarget %q was made for hub namespace %s, not for %s, whose object this is: nothing was done; a fleet admin must look at the BackupLocations named like it",
			name, owner, hub.Namespace)}
	}
	if namespace != SystemNamespace {
		allowed, err := namespaceAllowed(ctx, c, t, namespace)
		if err != nil {
			return nil, err
		}
		if !allowed {
			return nil, &Refusal{backupv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
				"BackupTarget %q does not allow self-service from namespace %q: ask the cluster admin to label the namespace to match the target's allowedNamespaces", name, namespace)}
		}
	}
	if t.Status.Phase != backupv1alpha1.TargetValid {
		msg := fmt.Sprintf("BackupTarget %q is not valid on this cluster", name)
		if t.Status.Phase != "" {
			msg += fmt.Sprintf(" (%s: %s)", t.Status.Reason, t.Status.Message)
		} else {
			msg += " yet: it has not been validated"
		}
		return nil, &Refusal{backupv1alpha1.ReasonTargetNotValid, msg}
	}
	return t, nil
}

// namespaceAllowed reports whether target's allowedNamespaces selects namespace;
// a target without allowedNamespaces allows no self-service.
func namespaceAllowed(ctx context.Context, c client.Client, t *backupv1alpha1.BackupTarget, namespace string) (bool, error) {
	if t.Spec.AllowedNamespaces == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(t.Spec.AllowedNamespaces)
	if err != nil {
		return false, nil
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return sel.Matches(labels.Set(ns.Labels)), nil
}
