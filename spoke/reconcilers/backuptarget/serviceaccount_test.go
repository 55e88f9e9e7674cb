package backuptarget_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backuptarget"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// Each BackupTarget gets a ServiceAccount of its own in lifeboat-system,
// owned by the target; the spoke signs in as the target with that account's
// tokens (audience api://AzureADTokenExchange, minted by the real API
// server), so tenant A's identity, federated for A's subject, trusts no other
// target. The account goes with its target.
func TestEachTargetSignsInAsItsOwnServiceAccount(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokens, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	factory := &targets.Factory{Tokens: tokens}
	startReconciler(t, factory)

	a, b := target("team-a-primary-0123456789"), target("team-b-primary-0123456789")
	for _, tgt := range []*backupv1alpha1.BackupTarget{a, b} {
		g.Expect(cp.Client.Create(ctx, tgt)).To(Succeed())
	}

	accounts := map[string]*corev1.ServiceAccount{}
	for _, tgt := range []*backupv1alpha1.BackupTarget{a, b} {
		sa := &corev1.ServiceAccount{}
		key := client.ObjectKey{Namespace: "lifeboat-system", Name: backupv1alpha1.TargetServiceAccount(tgt.Name)}
		g.Eventually(func() error { return cp.Client.Get(ctx, key, sa) }, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "the ServiceAccount of %s", tgt.Name)
		g.Expect(sa.Name).To(MatchRegexp(`^lifeboat-target-[0-9a-f]{16}$`))
		g.Expect(sa.Labels).To(HaveKeyWithValue(backupv1alpha1.LabelTarget, tgt.Name))
		g.Expect(sa.OwnerReferences).To(ConsistOf(And(HaveField("Kind", "BackupTarget"), HaveField("Name", tgt.Name), HaveField("UID", tgt.UID))))
		g.Expect(sa.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
		accounts[tgt.Name] = sa

		// The status tells the cluster's admin what to federate.
		g.Eventually(func() string {
			g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(tgt), tgt)).To(Succeed())
			return tgt.Status.FederatedSubject
		}, 30*time.Second, 100*time.Millisecond).Should(Equal("system:serviceaccount:lifeboat-system:" + sa.Name))
	}
	g.Expect(accounts[a.Name].Name).NotTo(Equal(accounts[b.Name].Name))

	// The client assertion of each target is its own account's token, for Entra ID.
	for _, tgt := range []*backupv1alpha1.BackupTarget{a, b} {
		assertion := factory.Config(tgt).Assertion
		g.Expect(assertion.Subject).To(Equal(tgt.Status.FederatedSubject))
		token, err := assertion.Token(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		claims := jwt.MapClaims{}
		_, _, err = jwt.NewParser().ParseUnverified(token, claims)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(claims["sub"]).To(Equal(tgt.Status.FederatedSubject))
		g.Expect(claims["aud"]).To(ConsistOf(blob.FederatedAudience))
		g.Expect(claims["iss"]).To(Equal(cp.Issuer()))
		exp, err := claims.GetExpirationTime()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(exp.Time).To(BeTemporally("~", time.Now().Add(15*time.Minute), time.Minute), "short-lived")
		again, err := factory.Config(tgt).Assertion.Token(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again).To(Equal(token), "kept until shortly before it expires")
	}

	// Deleted with its target, and only its target's.
	g.Expect(cp.Client.Delete(ctx, a)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(cp.Client.Get(ctx, client.ObjectKeyFromObject(accounts[a.Name]), &corev1.ServiceAccount{}))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "the garbage collector deletes the account of the deleted target")
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(accounts[b.Name]), &corev1.ServiceAccount{})).To(Succeed())

	// An account deleted by hand comes back on the next reconcile of its target.
	g.Expect(cp.Client.Delete(ctx, accounts[b.Name])).To(Succeed())
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
	b.Spec.ValidationInterval = &metav1.Duration{Duration: 2 * time.Hour}
	g.Expect(cp.Client.Update(ctx, b)).To(Succeed())
	g.Eventually(func() error {
		return cp.Client.Get(ctx, client.ObjectKeyFromObject(accounts[b.Name]), &corev1.ServiceAccount{})
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}

// A spoke upgraded from a version that signed in as its own ServiceAccount
// finds targets validated (Valid, within their interval) as that subject: it
// makes their accounts and validates them again at once, so that no target
// stays Valid on the strength of the old subject's federated credentials.
func TestUpgradedSpokeValidatesAgainAsTheTargetsSubject(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := target("validated-before-the-upgrade")
	g.Expect(cp.Client.Create(ctx, old)).To(Succeed())
	validated := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	old.Status = backupv1alpha1.BackupTargetStatus{ObservedGeneration: old.Generation, ValidationState: backupv1alpha1.ValidationState{
		Phase: backupv1alpha1.TargetValid, Reason: backupv1alpha1.ReasonValidationSucceeded, LastValidationTime: &validated,
	}}
	g.Expect(cp.Client.Status().Update(ctx, old)).To(Succeed())

	tokens, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	startReconciler(t, &targets.Factory{Tokens: tokens})
	g.Eventually(func() error {
		return cp.Client.Get(ctx, client.ObjectKey{Namespace: "lifeboat-system", Name: backupv1alpha1.TargetServiceAccount(old.Name)}, &corev1.ServiceAccount{})
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Eventually(func() backupv1alpha1.BackupTargetStatus {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(old), old)).To(Succeed())
		return old.Status
	}, 30*time.Second, 100*time.Millisecond).Should(And(
		HaveField("FederatedSubject", backupv1alpha1.TargetSubject(old.Name)),
		HaveField("LastValidationTime.Time", BeTemporally(">", validated.Time)),
		HaveField("Phase", backupv1alpha1.TargetInvalid), // the endpoint is not allowed here
	))
}

// A run that failed on storage asks for its target to be validated again,
// and it is, at once, not at its next interval.
func TestRevalidationRequestValidatesAtOnce(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tgt := target("revalidated")
	tgt.Spec.ValidationInterval = &metav1.Duration{Duration: time.Hour}
	g.Expect(cp.Client.Create(ctx, tgt)).To(Succeed())
	tokens, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	revalidation := targets.NewRevalidation()
	startReconcilerWith(t, cp.Config, &backuptarget.Reconciler{Targets: &targets.Factory{Tokens: tokens}, Revalidation: revalidation})
	validated := func() *metav1.Time {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(tgt), tgt)).To(Succeed())
		return tgt.Status.LastValidationTime
	}
	g.Eventually(validated, 30*time.Second, 100*time.Millisecond).ShouldNot(BeNil())
	first := validated().Time
	time.Sleep(1100 * time.Millisecond) // validation times have whole seconds
	g.Consistently(validated, 2*time.Second, 200*time.Millisecond).Should(HaveField("Time", first), "not due for another 30s")

	revalidation.Request(tgt.Name)
	g.Eventually(validated, 10*time.Second, 100*time.Millisecond).Should(HaveField("Time", BeTemporally(">", first)))
}

// A spoke that may not make the target's ServiceAccount (its Role in
// lifeboat-system is missing) says so in the target's status instead of
// leaving it unvalidated or valid.
func TestTargetWithoutItsAccountSaysWhy(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const user = "spoke-without-its-role"
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"backuptargets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"backuptargets/status"}, Verbs: []string{"get", "patch", "update"}},
		},
	}
	g.Expect(cp.Client.Create(ctx, role)).To(Succeed())
	g.Expect(cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
	_, cfg, err := cp.UserKubeconfig(user, user)
	g.Expect(err).NotTo(HaveOccurred())
	tokens, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())

	tgt := target("without-its-account")
	g.Expect(cp.Client.Create(ctx, tgt)).To(Succeed())
	startReconcilerAs(t, cfg, &targets.Factory{Tokens: tokens})
	g.Eventually(func() backupv1alpha1.ValidationState {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(tgt), tgt)).To(Succeed())
		return tgt.Status.ValidationState
	}, 30*time.Second, 100*time.Millisecond).Should(And(
		HaveField("Phase", backupv1alpha1.TargetInvalid),
		HaveField("Reason", backupv1alpha1.ReasonInvalidConfiguration),
		HaveField("Message", And(ContainSubstring("could not apply"), ContainSubstring("forbidden"), ContainSubstring(backupv1alpha1.TargetServiceAccount(tgt.Name)))),
	))
}

// target is a BackupTarget whose endpoint this spoke does not allow, so that
// its validation stops before any network.
func target(name string) *backupv1alpha1.BackupTarget {
	return &backupv1alpha1.BackupTarget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Endpoint: "https://127.0.0.1:1/acct"},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: fleet.TenantID},
		}},
	}
}

// startReconciler runs the BackupTarget reconciler with factory until the test ends.
func startReconciler(t *testing.T, factory *targets.Factory) {
	startReconcilerAs(t, cp.Config, factory)
}

// startReconcilerAs is startReconciler with the API server credentials of cfg.
func startReconcilerAs(t *testing.T, cfg *rest.Config, factory *targets.Factory) {
	startReconcilerWith(t, cfg, &backuptarget.Reconciler{Targets: factory})
}

// startReconcilerWith runs r, with a client of cfg, until the test ends.
func startReconcilerWith(t *testing.T, cfg *rest.Config, r *backuptarget.Reconciler) {
	fleet.StartTestManager(t, cfg, func(mgr ctrl.Manager) error {
		r.Client = mgr.GetClient()
		return r.SetupWithManager(mgr)
	})
}
