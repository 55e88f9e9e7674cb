// Package hubcredential gives the spoke its credential for the hub: the
// kubeconfig and client certificate that OCM's registration agent writes,
// and renews, in the lifeboat add-on's Secret on the cluster. It reads the
// Secret through the API server, so a renewed certificate is used without
// a restart (the add-on framework's own agents mount it as files and
// restart when it changes).
package hubcredential

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Where OCM puts the credential on the cluster.
const (
	// Namespace holds the Secret: the spoke's own namespace.
	Namespace = fleetv1alpha1.AddOnNamespace
	// DefaultSecretName is the Secret's name unless the spoke is told otherwise
	// (--hub-credential-secret).
	DefaultSecretName = fleetv1alpha1.AddOnHubKubeconfigSecret
	// Key is the Secret's key holding the kubeconfig. Files it names for the
	// client certificate and key (OCM names tls.crt and tls.key) are read
	// from the Secret's keys of those names.
	Key = "kubeconfig"
)

// Source reads the hub credential from the cluster's API server. Config and
// Client read the Secret on every call (one GET, no cache or watch of
// Secrets) and build a new config only when the Secret changed, so a caller
// that asks before each piece of work always uses the newest certificate.
// OCM renews the certificate well before it expires, and the old one stays
// valid until then, so work in flight is not cut off.
type Source struct {
	// Reader reads the Secret; it should not be a cache (use the manager's APIReader).
	Reader client.Reader
	// Namespace and Name locate the Secret (defaults Namespace and DefaultSecretName).
	Namespace, Name string
	// ClusterNamespace is the cluster's namespace on the hub, where the
	// credential must be allowed to keep BackupCatalogs (CatalogAccess).
	ClusterNamespace string
	// Server, when set, is the hub's URL as the spoke reaches it, instead of
	// the one in the kubeconfig (the address OCM's klusterlet uses).
	Server string
	// Scheme is the hub client's scheme (default: client-go's).
	Scheme *runtime.Scheme

	mu              sync.Mutex
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
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s does not exist: OCM's registration agent has not written it (is the lifeboat add-on installed and its CSR approved?)", ns, name)
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
		cfg, err := restConfig(kubeconfig, secret.Data, s.Server)
		if err != nil {
			return nil, nil, fmt.Errorf("the hub credential Secret %s/%s holds no usable kubeconfig: %w", ns, name, err)
		}
		s.resourceVersion, s.config, s.client = secret.ResourceVersion, cfg, nil
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

// restConfig is the rest config of kubeconfig, whose client certificate
// and key files are read from files (the Secret's data) by their base
// names, with its server replaced by server when that is set.
func restConfig(kubeconfig []byte, files map[string][]byte, server string) (*rest.Config, error) {
	kc, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, err
	}
	inline := func(file string, data *[]byte) error {
		if file == "" {
			return nil
		}
		b, ok := files[filepath.Base(file)]
		if !ok {
			return fmt.Errorf("it names the file %s, which the Secret has no key for", file)
		}
		*data = b
		return nil
	}
	for _, auth := range kc.AuthInfos {
		if err := inline(auth.ClientCertificate, &auth.ClientCertificateData); err != nil {
			return nil, err
		}
		if err := inline(auth.ClientKey, &auth.ClientKeyData); err != nil {
			return nil, err
		}
		auth.ClientCertificate, auth.ClientKey = "", ""
	}
	overrides := &clientcmd.ConfigOverrides{}
	if server != "" {
		overrides.ClusterInfo.Server = server
	}
	return clientcmd.NewDefaultClientConfig(*kc, overrides).ClientConfig()
}

// CatalogAccess checks, with a SelfSubjectAccessReview on the hub, that the
// credential is accepted and may create BackupCatalogs in its cluster
// namespace: what catalog sync needs.
func (s *Source) CatalogAccess(ctx context.Context) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	ns := s.ClusterNamespace
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
