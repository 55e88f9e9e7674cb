// Package hubcredential gives the spoke its credential for the hub: a
// kubeconfig that the hub delivers, and rotates, in a Secret on the cluster.
package hubcredential

import (
	"context"
	"fmt"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Where the hub puts the credential on the cluster.
const (
	// Namespace holds the Secret: the spoke's own namespace.
	Namespace = "lifeboat-system"
	// DefaultSecretName is the Secret's name unless the spoke is told otherwise
	// (--hub-credential-secret).
	DefaultSecretName = "lifeboat-hub-credential"
	// Key is the Secret's key holding the kubeconfig.
	Key = "kubeconfig"
)

// Source reads the hub credential from the cluster's API server. Config and
// Client read the Secret on every call (one GET, no cache or watch of
// Secrets) and build a new config only when the Secret changed, so a caller
// that asks before each piece of work always uses the newest token. The hub
// rotates the token well before it expires, and the old one stays valid
// until then, so work in flight is not cut off.
type Source struct {
	// Reader reads the Secret; it should not be a cache (use the manager's APIReader).
	Reader client.Reader
	// Namespace and Name locate the Secret (defaults Namespace and DefaultSecretName).
	Namespace, Name string
	// Scheme is the hub client's scheme (default: client-go's).
	Scheme *runtime.Scheme

	mu              sync.Mutex
	namespace       string
	resourceVersion string
	config          *rest.Config
	client          client.Client
}

// Config is a rest config for the hub from the Secret as it is now. Treat it
// as read-only: it is shared until the Secret changes.
func (s *Source) Config(ctx context.Context) (*rest.Config, error) {
	cfg, _, err := s.load(ctx, false)
	return cfg, err
}

// Client is a client for the hub from the Secret as it is now; it is shared
// until the Secret changes.
func (s *Source) Client(ctx context.Context) (client.Client, error) {
	_, c, err := s.load(ctx, true)
	return c, err
}

func (s *Source) load(ctx context.Context, withClient bool) (*rest.Config, client.Client, error) {
	ns, name := s.Namespace, s.Name
	if ns == "" {
		ns = Namespace
	}
	if name == "" {
		name = DefaultSecretName
	}
	secret := &corev1.Secret{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s does not exist: the hub has not delivered it (is the cluster managed and its agent ManifestWork applied?)", ns, name)
		}
		return nil, nil, fmt.Errorf("read the hub credential Secret %s/%s: %w", ns, name, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if secret.ResourceVersion != s.resourceVersion || s.config == nil {
		kubeconfig, ok := secret.Data[Key]
		if !ok || len(kubeconfig) == 0 {
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s has no key %q", ns, name, Key)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
		if err != nil {
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s holds no usable kubeconfig: %w", ns, name, err)
		}
		ccfg, err := clientcmd.Load(kubeconfig)
		if err != nil {
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s holds no usable kubeconfig: %w", ns, name, err)
		}
		namespace := ""
		if kctx := ccfg.Contexts[ccfg.CurrentContext]; kctx != nil {
			namespace = kctx.Namespace
		}
		s.resourceVersion, s.config, s.client, s.namespace = secret.ResourceVersion, cfg, nil, namespace
	}
	if withClient && s.client == nil {
		opts := client.Options{}
		if s.Scheme != nil {
			opts.Scheme = s.Scheme
		}
		c, err := client.New(rest.CopyConfig(s.config), opts)
		if err != nil {
			return nil, nil, fmt.Errorf("client for the hub: %w", err)
		}
		s.client = c
	}
	return s.config, s.client, nil
}

// CatalogAccess checks, with a SelfSubjectAccessReview on the hub, that the
// credential is accepted and may create BackupCatalogs in its cluster
// namespace (the kubeconfig context's namespace): what catalog sync needs.
func (s *Source) CatalogAccess(ctx context.Context) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ns := s.namespace
	s.mu.Unlock()
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "fleet.lifeboat.dev", Resource: "backupcatalogs"},
	}}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("the hub refused the credential: %w", err)
	}
	if !review.Status.Allowed {
		return fmt.Errorf("the hub accepts the credential but does not allow it to create backupcatalogs in namespace %q: %s", ns, review.Status.Reason)
	}
	return nil
}
