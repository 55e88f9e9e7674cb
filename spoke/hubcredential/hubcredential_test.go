package hubcredential

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp stands for both sides: the spoke holding the Secret, and the hub the
// kubeconfig in it points to.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "hubcredential", Setup: func(ctx context.Context, c *fleet.ControlPlane) error {
		cp = c
		return cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}})
	}}.RunTests(m))
}

// The Secret as OCM's registration agent writes it: a kubeconfig naming the
// files tls.crt and tls.key, and those two keys beside it; a renewed
// certificate is used from the next call, and the server can be replaced.
func TestSourceFollowsTheSecret(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := &Source{Reader: cp.Client, ClusterNamespace: "prod--eu-1"}

	t.Log("before OCM wrote it, the error says so")
	_, err := src.Client(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("lifeboat-system/lifeboat-hub-kubeconfig does not exist: OCM's registration agent has not written it")))

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: DefaultSecretName}, Data: map[string][]byte{"other": []byte("x")}}
	g.Expect(cp.Client.Create(ctx, secret)).To(Succeed())
	_, err = src.Config(ctx)
	g.Expect(err).To(MatchError(ContainSubstring(`has no key "kubeconfig"`)))

	t.Log("a kubeconfig naming a certificate file the Secret lacks is refused")
	kubeconfig, cert, key := ocmSecret(g, cp.URL, "first")
	secret.Data = map[string][]byte{Key: kubeconfig, "tls.crt": cert}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	_, err = src.Client(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("names the file tls.key, which the Secret has no key for")))

	t.Log("the complete Secret gives a client that acts as the certificate's user")
	secret.Data = map[string][]byte{Key: kubeconfig, "tls.crt": cert, "tls.key": key}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	c, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(whoAmI(ctx, c)).To(Equal("first"))
	again, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(BeIdenticalTo(c), "unchanged Secret, same client")

	t.Log("CatalogAccess asks about the cluster namespace, not the kubeconfig's context namespace")
	err = src.CatalogAccess(ctx)
	g.Expect(err).To(MatchError(ContainSubstring(`does not allow it to create backupcatalogs in namespace "prod--eu-1"`)))

	t.Log("a renewed certificate is picked up on the next call")
	kubeconfig, cert, key = ocmSecret(g, cp.URL, "second")
	secret.Data = map[string][]byte{Key: kubeconfig, "tls.crt": cert, "tls.key": key}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	renewed, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(renewed).NotTo(BeIdenticalTo(c))
	g.Expect(whoAmI(ctx, renewed)).To(Equal("second"))

	t.Log("Server replaces the kubeconfig's address")
	kubeconfig, _, _ = ocmSecret(g, "https://127.0.0.1:1", "third")
	secret.Data[Key] = kubeconfig
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	moved := &Source{Reader: cp.Client, Server: cp.URL}
	mc, err := moved.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(whoAmI(ctx, mc)).To(Equal("second"), "the certificate in the Secret, at the Server")

	t.Log("a Secret with a broken kubeconfig is refused, not half used")
	secret.Data[Key] = []byte("{not yaml")
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	_, err = src.Client(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("holds no usable kubeconfig")))
}

// ocmSecret is what OCM's registration agent writes for an add-on: a
// kubeconfig for server whose user's certificate and key are the files
// tls.crt and tls.key, with the context namespace "configuration"; and a
// client certificate for user and its key.
func ocmSecret(g *WithT, server, user string) (kubeconfig, cert, key []byte) {
	kp, err := cp.CA.Client(user)
	g.Expect(err).NotTo(HaveOccurred())
	kc := clientcmdapi.NewConfig()
	kc.Clusters["hub"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: cp.CA.CertPEM()}
	kc.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: "tls.crt", ClientKey: "tls.key"}
	kc.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: "default-auth", Namespace: "configuration"}
	kc.CurrentContext = "default-context"
	raw, err := clientcmd.Write(*kc)
	g.Expect(err).NotTo(HaveOccurred())
	return raw, kp.CertPEM, kp.KeyPEM
}

func whoAmI(ctx context.Context, c client.Client) (string, error) {
	r := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, r); err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}
