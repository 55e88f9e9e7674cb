package restore

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/oauth2"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/utils/ptr"
)

// What a restore may do: write whatever a backup holds, bind roles that it
// need not hold itself, and write a team's restore as the team member who
// asked for it. Only ServiceAccount lifeboat-spoke-restore holds this role
// (the chart binds it); the spoke's own identity only reads, and asks for
// this identity's token when a restore starts.
// +kubebuilder:rbac:groups=*,resources=*,verbs=get;list;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;clusterroles,verbs=bind;escalate
// +kubebuilder:rbac:groups="",resources=users;groups;serviceaccounts,verbs=impersonate

// Identity is the ServiceAccount restores write as.
type Identity struct {
	// Tokens asks the API server for the ServiceAccount's tokens.
	Tokens kubernetes.Interface
	// Namespace and Name name the ServiceAccount.
	Namespace, Name string
}

// tokenLifetime is how long a restore token lasts; it is renewed shortly
// before it expires, so a restore may run longer.
const tokenLifetime = time.Hour

// Config is base with the identity's credentials instead of its own: a
// token of the ServiceAccount, asked for on first use and renewed before it
// expires.
func (id *Identity) Config(base *rest.Config) *rest.Config {
	c := rest.AnonymousClientConfig(base)
	c.WrapTransport = transport.TokenSourceWrapTransport(transport.NewCachedTokenSource(id))
	return c
}

// Token implements oauth2.TokenSource with the TokenRequest API.
func (id *Identity) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := id.Tokens.CoreV1().ServiceAccounts(id.Namespace).CreateToken(ctx, id.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(tokenLifetime.Seconds()))}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking for a token of the restore identity %s/%s: %w", id.Namespace, id.Name, err)
	}
	return &oauth2.Token{AccessToken: tr.Status.Token, Expiry: tr.Status.ExpirationTimestamp.Time}, nil
}
