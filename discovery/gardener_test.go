package discovery

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

var (
	garden     *fleet.Garden
	kubeconfig []byte
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "lifeboat-discovery-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		if garden, err = fleet.StartGarden(ctx, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer garden.Stop()
		if kubeconfig, err = os.ReadFile(garden.Kubeconfig); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

const backupLabel = "lifeboat.dev/backup"

func TestGardenerListsSelectedShoots(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, p := range []string{"list-a", "list-b", "list-c"} {
		g.Expect(garden.CreateProject(ctx, p)).To(Succeed())
	}
	selected := map[string]string{backupLabel: "enabled"}
	for _, o := range []fleet.ShootOptions{
		{Project: "list-a", Name: "one", Labels: map[string]string{backupLabel: "enabled", "team": "blue"}, Region: "northeurope"},
		{Project: "list-a", Name: "two", Labels: selected, Hibernated: true},
		{Project: "list-a", Name: "other", Labels: map[string]string{"team": "blue"}},
		{Project: "list-b", Name: "three", Labels: selected, LastOperation: gardencorev1beta1.LastOperationStateFailed},
		{Project: "list-c", Name: "four", Labels: selected},
	} {
		_, err := garden.CreateShoot(ctx, o)
		g.Expect(err).NotTo(HaveOccurred())
	}

	src, err := NewGardener(kubeconfig, []string{"list-a", "list-b"}, labels.SelectorFromSet(selected))
	g.Expect(err).NotTo(HaveOccurred())
	shoots, err := src.List(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shoots).To(HaveLen(3))
	one, two, three := shoots[0], shoots[1], shoots[2]
	// Gardener adds labels of its own (provider, seed, extensions); all are kept.
	g.Expect(one.Labels).To(And(HaveKeyWithValue(backupLabel, "enabled"), HaveKeyWithValue("team", "blue"),
		HaveKeyWithValue("provider.extensions.gardener.cloud/azure", "true")))
	one.Labels = nil
	g.Expect(one).To(Equal(Shoot{
		Project: "list-a", Name: "one", ClusterName: "list-a--one",
		Seed: "azure-northeurope", Provider: "azure", Region: "northeurope", Ready: true,
	}))
	g.Expect(two.ClusterName).To(Equal("list-a--two"))
	g.Expect(two.Ready).To(BeFalse())
	g.Expect(two.NotReadyMessage).To(Equal("hibernated"))
	g.Expect(three.ClusterName).To(Equal("list-b--three"))
	g.Expect(three.NotReadyReason).To(Equal(NotReadyLastOperation))
	g.Expect(three.NotReadyMessage).To(HavePrefix("last operation Reconcile Failed 100%"))

	// No projects: every project the kubeconfig can see.
	all, err := NewGardener(kubeconfig, nil, labels.SelectorFromSet(selected))
	g.Expect(err).NotTo(HaveOccurred())
	shoots, err = all.List(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names(shoots)).To(ContainElements("list-a--one", "list-a--two", "list-b--three", "list-c--four"))
	g.Expect(names(shoots)).NotTo(ContainElement("list-a--other"))
}

func TestGardenerListsPages(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(garden.CreateProject(ctx, "pages")).To(Succeed())
	const n = pageSize + 20
	fast := fastGarden(t)
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := fast.CreateShoot(ctx, fleet.ShootOptions{Project: "pages", Name: fmt.Sprintf("s%04d", i)})
			errs <- err
		}()
	}
	for range n {
		g.Expect(<-errs).NotTo(HaveOccurred())
	}
	src, err := NewGardener(kubeconfig, []string{"pages"}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	shoots, err := src.List(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shoots).To(HaveLen(n))
	g.Expect(shoots[0].ClusterName).To(Equal("pages--s0000"))
	g.Expect(shoots[n-1].ClusterName).To(Equal(fmt.Sprintf("pages--s%04d", n-1)))
}

// A kubeconfig allowed into one project lists it and names the other as failed.
func TestGardenerReportsProjectsItCannotList(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, p := range []string{"rbac-a", "rbac-b"} {
		g.Expect(garden.CreateProject(ctx, p)).To(Succeed())
		_, err := garden.CreateShoot(ctx, fleet.ShootOptions{Project: p, Name: "s"})
		g.Expect(err).NotTo(HaveOccurred())
	}
	const user = "lifeboat-viewer"
	g.Expect(garden.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-viewer", Namespace: "garden-rbac-a"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"core.gardener.cloud"}, Resources: []string{"shoots"}, Verbs: []string{"get", "list", "watch"}}},
	})).To(Succeed())
	g.Expect(garden.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-viewer", Namespace: "garden-rbac-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "shoot-viewer"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
	raw, err := clientcmd.Load(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	for _, a := range raw.AuthInfos {
		a.Impersonate = user
	}
	viewer, err := clientcmd.Write(*raw)
	g.Expect(err).NotTo(HaveOccurred())

	src, err := NewGardener(viewer, []string{"rbac-a", "rbac-b"}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	// The RBAC authorizer learns of the new RoleBinding through its informer,
	// so the first lists may still be refused in both projects.
	var shoots []Shoot
	g.Eventually(func() []string {
		shoots, err = src.List(ctx)
		return names(shoots)
	}).WithTimeout(10 * time.Second).Should(Equal([]string{"rbac-a--s"}))
	var listErr *ListError
	g.Expect(err).To(BeAssignableToTypeOf(listErr))
	listErr = err.(*ListError)
	g.Expect(listErr.Failed("rbac-b")).To(BeTrue())
	g.Expect(listErr.Failed("rbac-a")).To(BeFalse())
	g.Expect(err.Error()).To(And(ContainSubstring("listing shoots in project rbac-b"), ContainSubstring("forbidden")))
}

func TestGardenerWatchNotifies(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g.Expect(garden.CreateProject(ctx, "watch")).To(Succeed())
	selected := map[string]string{backupLabel: "enabled"}
	_, err := garden.CreateShoot(ctx, fleet.ShootOptions{Project: "watch", Name: "first", Labels: selected})
	g.Expect(err).NotTo(HaveOccurred())
	src, err := NewGardener(kubeconfig, []string{"watch"}, labels.SelectorFromSet(selected))
	g.Expect(err).NotTo(HaveOccurred())

	var calls atomic.Int32
	done := make(chan error)
	go func() { done <- src.Watch(ctx, func() { calls.Add(1) }) }()
	// Once for what exists when it starts.
	g.Eventually(calls.Load).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))
	g.Consistently(calls.Load).WithTimeout(time.Second).Should(BeEquivalentTo(1))

	// A new selected shoot; an unselected one is not seen.
	_, err = garden.CreateShoot(ctx, fleet.ShootOptions{Project: "watch", Name: "ignored"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Consistently(calls.Load).WithTimeout(time.Second).Should(BeEquivalentTo(1))
	start := time.Now()
	_, err = garden.CreateShoot(ctx, fleet.ShootOptions{Project: "watch", Name: "second", Labels: selected})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(calls.Load).WithTimeout(5 * time.Second).Should(BeNumerically(">", 1))
	t.Logf("watch saw a new shoot after %v", time.Since(start))

	// Removing the selecting label is a removal.
	n := calls.Load()
	shoot := &gardencorev1beta1.Shoot{}
	g.Expect(garden.Client.Get(ctx, client.ObjectKey{Namespace: "garden-watch", Name: "first"}, shoot)).To(Succeed())
	patch := client.MergeFrom(shoot.DeepCopy())
	delete(shoot.Labels, backupLabel)
	g.Expect(garden.Client.Patch(ctx, shoot, patch)).To(Succeed())
	g.Eventually(calls.Load).WithTimeout(5 * time.Second).Should(BeNumerically(">", n))

	cancel()
	g.Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
}

func TestGardenerUnreachable(t *testing.T) {
	g := NewWithT(t)
	raw, err := clientcmd.Load(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	for _, c := range raw.Clusters {
		c.Server = "https://127.0.0.1:1"
	}
	data, err := clientcmd.Write(*raw)
	g.Expect(err).NotTo(HaveOccurred())
	src, err := NewGardener(data, []string{"x"}, nil)
	g.Expect(err).NotTo(HaveOccurred(), "NewGardener does not contact the garden")
	_, err = src.List(context.Background())
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
}

func TestKubeconfigRefusals(t *testing.T) {
	raw, err := clientcmd.Load(kubeconfig)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, tc := range []struct {
		name   string
		data   func() []byte
		reason string
	}{
		{"garbage", func() []byte { return []byte("{not yaml: [") }, "parsing the kubeconfig"},
		{"empty", func() []byte { return []byte("apiVersion: v1\nkind: Config\n") }, "the kubeconfig is not usable"},
		{"exec plugin", func() []byte {
			c := raw.DeepCopy()
			for _, a := range c.AuthInfos {
				a.Exec = &clientcmdExecConfig{Command: "/bin/sh", APIVersion: "client.authentication.k8s.io/v1"}
			}
			return write(t, c)
		}, "runs an exec plugin"},
		{"token file", func() []byte {
			c := raw.DeepCopy()
			for _, a := range c.AuthInfos {
				a.TokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
			}
			return write(t, c)
		}, "refers to a local file"},
		{"CA file", func() []byte {
			c := raw.DeepCopy()
			for _, cl := range c.Clusters {
				cl.CertificateAuthority = "/etc/ssl/ca.pem"
			}
			return write(t, c)
		}, "refers to a local CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := NewGardener(tc.data(), nil, nil)
			g.Expect(err).To(MatchError(ContainSubstring(tc.reason)))
		})
	}
}

func names(shoots []Shoot) []string {
	out := make([]string, len(shoots))
	for i, s := range shoots {
		out[i] = s.ClusterName
	}
	return out
}
