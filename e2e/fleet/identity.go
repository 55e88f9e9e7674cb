package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WorkloadIdentityAudience is the audience Azure expects on federated tokens.
const WorkloadIdentityAudience = "api://AzureADTokenExchange"

// AllowIssuerDiscovery lets unauthenticated callers (Entra) read the service
// account issuer's OIDC discovery document and keys, as managed clusters publish them.
func AllowIssuerDiscovery(ctx context.Context, cp *ControlPlane) error {
	crb := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-fleet:service-account-issuer-discovery"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "system:unauthenticated"}},
	}
	return cp.Client.Patch(ctx, crb, client.Apply, fieldOwner, client.ForceOwnership)
}

// ServiceAccountToken mints a token for namespace/name with the TokenRequest API.
func ServiceAccountToken(ctx context.Context, cp *ControlPlane, namespace, name, audience string, ttl time.Duration) (*authenticationv1.TokenRequest, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: new(int64(ttl.Seconds())),
	}}
	if err := cp.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		return nil, fmt.Errorf("requesting a token for %s/%s on %s: %w", namespace, name, cp.Name, err)
	}
	return tr, nil
}

// EnsureServiceAccount creates namespace and service account name in it if missing.
func EnsureServiceAccount(ctx context.Context, cp *ControlPlane, namespace, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := client.IgnoreAlreadyExists(cp.Client.Create(ctx, ns)); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	return client.IgnoreAlreadyExists(cp.Client.Create(ctx, sa))
}

// TokenFile keeps a projected service-account token file up to date the way the
// kubelet does: a new token at 80% of the old one's lifetime, written atomically.
type TokenFile struct {
	Path    string
	Subject string

	mint     func(ctx context.Context) (*authenticationv1.TokenRequest, error)
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	rotation int
	next     time.Time
	lastErr  error
}

// StartTokenFile mints a token for namespace/name on cp with audience and keeps
// it fresh in path until Stop.
func StartTokenFile(ctx context.Context, cp *ControlPlane, namespace, name, audience, path string, ttl time.Duration) (*TokenFile, error) {
	if err := EnsureServiceAccount(ctx, cp, namespace, name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tf := &TokenFile{
		Path:    path,
		Subject: "system:serviceaccount:" + namespace + ":" + name,
		done:    make(chan struct{}),
		mint: func(ctx context.Context) (*authenticationv1.TokenRequest, error) {
			return ServiceAccountToken(ctx, cp, namespace, name, audience, ttl)
		},
	}
	if err := tf.Refresh(ctx); err != nil {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	tf.cancel = cancel
	go tf.loop(loopCtx)
	return tf, nil
}

func (tf *TokenFile) loop(ctx context.Context) {
	defer close(tf.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(tf.NextRefresh())):
		}
		if err := tf.Refresh(ctx); err != nil {
			tf.mu.Lock()
			tf.lastErr, tf.next = err, time.Now().Add(5*time.Second)
			tf.mu.Unlock()
		}
	}
}

// Refresh writes a new token now and schedules the next refresh at 80% of its lifetime.
func (tf *TokenFile) Refresh(ctx context.Context) error {
	tr, err := tf.mint(ctx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(tf.Path+".tmp", []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tf.Path+".tmp", tf.Path); err != nil {
		return err
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	tf.rotation++
	tf.lastErr = nil
	tf.next = time.Now().Add(time.Until(tr.Status.ExpirationTimestamp.Time) * 8 / 10)
	return nil
}

// NextRefresh is when the next token will be written.
func (tf *TokenFile) NextRefresh() time.Time {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return tf.next
}

// Rotations is how many tokens have been written so far.
func (tf *TokenFile) Rotations() int {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return tf.rotation
}

// Stop ends the refresh loop.
func (tf *TokenFile) Stop() {
	if tf != nil && tf.cancel != nil {
		tf.cancel()
		<-tf.done
	}
}
