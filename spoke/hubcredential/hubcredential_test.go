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
	"k8s.io/utils/ptr"
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

func TestSourceFollowsTheSecret(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := &Source{Reader: cp.Client}

	t.Log("before the hub delivered it, the error says so")
	_, err := src.Client(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("lifeboat-system/lifeboat-hub-credential does not exist")))

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: DefaultSecretName}, Data: map[string][]byte{"other": []byte("x")}}
	g.Expect(cp.Client.Create(ctx, secret)).To(Succeed())
	_, err = src.Config(ctx)
	g.Expect(err).To(MatchError(ContainSubstring(`has no key "kubeconfig"`)))

	t.Log("a delivered kubeconfig gives a client that acts as its ServiceAccount")
	setKubeconfig(g, secret, kubeconfigFor(g, "first"))
	c, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(whoAmI(ctx, c)).To(Equal("system:serviceaccount:lifeboat-system:first"))
	cfg, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	again, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(BeIdenticalTo(c), "unchanged Secret, same client")

	t.Log("a rotated token is picked up on the next call")
	setKubeconfig(g, secret, kubeconfigFor(g, "second"))
	rotated, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rotated).NotTo(BeIdenticalTo(c))
	g.Expect(whoAmI(ctx, rotated)).To(Equal("system:serviceaccount:lifeboat-system:second"))
	newCfg, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(newCfg.BearerToken).NotTo(Equal(cfg.BearerToken))

	t.Log("a Secret with a broken kubeconfig is refused, not half used")
	setKubeconfig(g, secret, []byte("{not yaml"))
	_, err = src.Client(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("holds no usable kubeconfig")))
}

func setKubeconfig(g *WithT, secret *corev1.Secret, kubeconfig []byte) {
	secret.Data = map[string][]byte{Key: kubeconfig}
	g.Expect(cp.Client.Update(context.Background(), secret)).To(Succeed())
}

// kubeconfigFor is a kubeconfig for the control plane with a token of a new
// ServiceAccount lifeboat-system/name, as the hub would deliver it.
func kubeconfigFor(g *WithT, name string) []byte {
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
	g.Expect(cp.Client.Create(ctx, sa)).To(Succeed())
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	g.Expect(cp.Client.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	kc := clientcmdapi.NewConfig()
	kc.Clusters["hub"] = &clientcmdapi.Cluster{Server: cp.URL, CertificateAuthorityData: cp.CA.CertPEM()}
	kc.AuthInfos["spoke"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["hub"] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: "spoke"}
	kc.CurrentContext = "hub"
	raw, err := clientcmd.Write(*kc)
	g.Expect(err).NotTo(HaveOccurred())
	return raw
}

func whoAmI(ctx context.Context, c client.Client) (string, error) {
	r := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, r); err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}
