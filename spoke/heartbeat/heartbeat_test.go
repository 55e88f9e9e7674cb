package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// cp is the package's control plane with the spoke's namespace.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "heartbeat", Setup: func(ctx context.Context, c *fleet.ControlPlane) error {
		cp = c
		return cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}})
	}}.RunTests(m))
}

func TestHeartbeatRenewsTheLeaseWithTheSpokesRBAC(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Log("a ServiceAccount without the spoke's RBAC may not beat: the identity is really restricted")
	bare := serviceAccountClient(t, g, "no-rbac", false)
	err := (&Heartbeat{Client: bare}).Beat(ctx)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)

	t.Log("the spoke's ServiceAccount, with only the chart's RBAC, creates the Lease at once and renews it")
	spoke := serviceAccountClient(t, g, "lifeboat-spoke", true)
	g.Eventually(func() error { return (&Heartbeat{Client: spoke}).Beat(ctx) }).WithTimeout(15 * time.Second).Should(Succeed())
	g.Expect(cp.Client.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: LeaseName}})).To(Succeed())

	hb := &Heartbeat{Client: spoke, Interval: 300 * time.Millisecond, Identity: "lifeboat-spoke-7d9f-abcde", Version: "v9.8.7"}
	g.Expect(hb.NeedLeaderElection()).To(BeFalse())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hb.Start(runCtx) }()

	lease := &coordinationv1.Lease{}
	g.Eventually(func() error {
		return cp.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: LeaseName}, lease)
	}).WithTimeout(5 * time.Second).Should(Succeed())
	g.Expect(lease.Spec.HolderIdentity).To(Equal(ptr.To("lifeboat-spoke-7d9f-abcde")))
	g.Expect(lease.Spec.LeaseDurationSeconds).To(Equal(ptr.To[int32](1)))
	g.Expect(lease.Annotations).To(HaveKeyWithValue(VersionAnnotation, "v9.8.7"))
	g.Expect(lease.Spec.RenewTime).NotTo(BeNil())
	first := lease.Spec.RenewTime.Time
	g.Expect(first).To(BeTemporally("~", time.Now(), 5*time.Second))

	g.Eventually(func() time.Time {
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: LeaseName}, lease)).To(Succeed())
		return lease.Spec.RenewTime.Time
	}).WithTimeout(5 * time.Second).Should(BeTemporally(">", first))

	t.Log("stopped, it renews no more")
	stop()
	g.Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: LeaseName}, lease)).To(Succeed())
	last := lease.Spec.RenewTime.Time
	g.Consistently(func() time.Time {
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: LeaseName}, lease)).To(Succeed())
		return lease.Spec.RenewTime.Time
	}).WithTimeout(time.Second).Should(BeTemporally("==", last))
}

func TestHeartbeatReportsHubAccess(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	annotation := func(check func(context.Context) error) string {
		g.Expect((&Heartbeat{Client: cp.Client, HubAccess: check}).Beat(ctx)).To(Succeed())
		lease := &coordinationv1.Lease{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: LeaseName}, lease)).To(Succeed())
		return lease.Annotations[HubAccessAnnotation]
	}
	g.Expect(annotation(func(context.Context) error { return nil })).To(Equal("ok"))
	g.Expect(annotation(func(context.Context) error { return errors.New("the hub refused the credential: Unauthorized") })).
		To(Equal("the hub refused the credential: Unauthorized"))
	long := annotation(func(context.Context) error { return errors.New(strings.Repeat("x", 2000)) })
	g.Expect(long).To(HaveLen(maxHubAccessMessage))
	g.Expect(long).To(HaveSuffix("..."))
	g.Expect(annotation(nil)).To(BeEmpty(), "without a check, nothing is claimed")
}

func TestLeaseDuration(t *testing.T) {
	g := NewWithT(t)
	g.Expect(LeaseDuration(DefaultInterval)).To(BeEquivalentTo(90))
	g.Expect(LeaseDuration(10 * time.Second)).To(BeEquivalentTo(30))
	g.Expect(LeaseDuration(700 * time.Millisecond)).To(BeEquivalentTo(3))
	g.Expect(LeaseDuration(100 * time.Millisecond)).To(BeEquivalentTo(1))
}

func TestVersion(t *testing.T) {
	g := NewWithT(t)
	defer func(v string) { version = v }(version)
	version = ""
	g.Expect(Version()).To(Equal("dev"), "a test binary has no module version")
	version = "v1.4.0"
	g.Expect(Version()).To(Equal("v1.4.0"))
}

// serviceAccountClient is a client for ServiceAccount lifeboat-system/name,
// bound to the spoke chart's ClusterRole and Roles when withRBAC.
func serviceAccountClient(t *testing.T, g *WithT, name string, withRBAC bool) client.Client {
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
	g.Expect(cp.Client.Create(ctx, sa)).To(Succeed())
	if withRBAC {
		raw, err := charts.SpokeRBAC()
		g.Expect(err).NotTo(HaveOccurred())
		subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: name}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			role := &rbacv1.Role{}
			err := dec.Decode(role)
			if errors.Is(err, io.EOF) {
				break
			}
			g.Expect(err).NotTo(HaveOccurred())
			ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: role.Kind, Name: role.Name}
			switch role.Kind {
			case "ClusterRole":
				g.Expect(cp.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role.Name}, Rules: role.Rules})).To(Succeed())
				g.Expect(cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name}, RoleRef: ref, Subjects: []rbacv1.Subject{subject}})).To(Succeed())
			case "Role":
				g.Expect(cp.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: role.Namespace, Name: role.Name}, Rules: role.Rules})).To(Succeed())
				g.Expect(cp.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: role.Namespace, Name: role.Name}, RoleRef: ref, Subjects: []rbacv1.Subject{subject}})).To(Succeed())
			default:
				t.Fatalf("role.yaml holds a %s", role.Kind)
			}
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	g.Expect(cp.Client.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	cfg := rest.AnonymousClientConfig(cp.Config)
	cfg.BearerToken = tr.Status.Token
	c, err := client.New(cfg, client.Options{Scheme: fleet.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}
