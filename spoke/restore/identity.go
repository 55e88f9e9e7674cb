package restore

import (
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"github.com/lifeboat-dev/lifeboat/spoke/satokens"
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
	src := &satokens.Source{Tokens: id.Tokens, Namespace: id.Namespace, Name: id.Name, Lifetime: tokenLifetime}
	c.WrapTransport = transport.TokenSourceWrapTransport(transport.NewCachedTokenSource(src))
	return c
}
