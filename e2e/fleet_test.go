package e2e

import (
	"context"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	gardenclientset "github.com/gardener/gardener/pkg/client/core/clientset/versioned"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// A ManifestWork on the hub reaches the spoke through the real work agent,
// reports JSONPaths feedback back to the hub, and its deletion removes the object.
func TestManifestWorkRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hub, spoke1, spoke2 := testFleet.Hub.Client, testFleet.Spokes[0], testFleet.Spokes[1]

	mw, err := fleet.ConfigMapWork(spoke1.Name, "roundtrip", map[string]string{"color": "teal"})
	g.Expect(err).NotTo(HaveOccurred())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "roundtrip", Namespace: "default"}}
	g.Expect(hub.Create(ctx, mw)).To(Succeed())

	got := &corev1.ConfigMap{}
	g.Eventually(func() error {
		return spoke1.Client.Get(ctx, client.ObjectKeyFromObject(cm), got)
	}, time.Minute, 200*time.Millisecond).Should(Succeed(), "the work agent applies the ConfigMap on spoke-1")
	g.Expect(got.Data).To(HaveKeyWithValue("color", "teal"))
	err = spoke2.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "work for spoke-1 never lands on spoke-2, got %v", err)

	g.Eventually(func() string {
		if err := hub.Get(ctx, client.ObjectKeyFromObject(mw), mw); err != nil {
			return err.Error()
		}
		v, _ := fleet.FeedbackValue(mw, "color")
		return v
	}, time.Minute, 500*time.Millisecond).Should(Equal("teal"), "JSONPaths feedback reaches the hub")

	// A change on the hub side flows down, and the feedback follows it.
	updated, err := fleet.ConfigMapWork(spoke1.Name, "roundtrip", map[string]string{"color": "amber"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mw), mw)).To(Succeed())
	mw.Spec = updated.Spec
	g.Expect(hub.Update(ctx, mw)).To(Succeed())
	g.Eventually(func() string {
		_ = spoke1.Client.Get(ctx, client.ObjectKeyFromObject(cm), got)
		return got.Data["color"]
	}, time.Minute, 200*time.Millisecond).Should(Equal("amber"))
	g.Eventually(func() string {
		_ = hub.Get(ctx, client.ObjectKeyFromObject(mw), mw)
		v, _ := fleet.FeedbackValue(mw, "color")
		return v
	}, time.Minute, 500*time.Millisecond).Should(Equal("amber"), "feedback follows the change")

	g.Expect(hub.Delete(ctx, mw)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(spoke1.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "deleting the ManifestWork removes the ConfigMap")
	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKeyFromObject(mw), &workv1.ManifestWork{}))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "the agent releases the ManifestWork's finalizer")
}

// The agent's hub credential reaches only its own cluster namespace.
func TestWorkAgentHubCredentialIsScoped(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s1 := testFleet.Spokes[0]
	agent, err := kubeClientFromFile(s1.HubKubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(agent.List(ctx, &workv1.ManifestWorkList{}, client.InNamespace(s1.Name))).To(Succeed())
	err = agent.List(ctx, &workv1.ManifestWorkList{}, client.InNamespace(testFleet.Spokes[1].Name))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "spoke-1's agent may not read spoke-2's work, got %v", err)
	err = agent.List(ctx, &corev1.SecretList{}, client.InNamespace(s1.Name))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the agent may not read secrets on the hub, got %v", err)
}

// Shoots in the garden are served by the real gardener-apiserver and listed with
// Gardener's typed client.
func TestGardenServesShoots(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	garden := testFleet.Garden
	g.Expect(garden.CreateProject(ctx, "e2e")).To(Succeed())
	_, err := garden.CreateShoot(ctx, fleet.ShootOptions{
		Project: "e2e", Name: "alpha", Target: testFleet.Spokes[0].ControlPlane,
		Labels: map[string]string{"lifeboat.dev/backup": "enabled"},
	})
	g.Expect(err).NotTo(HaveOccurred())

	cs, err := gardenclientset.NewForConfig(garden.Config)
	g.Expect(err).NotTo(HaveOccurred())
	shoots, err := cs.CoreV1beta1().Shoots(fleet.ProjectNamespace("e2e")).List(ctx, metav1.ListOptions{LabelSelector: "lifeboat.dev/backup=enabled"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shoots.Items).To(HaveLen(1))
	shoot := shoots.Items[0]
	g.Expect(shoot.Spec.Provider.Type).To(Equal("azure"))
	g.Expect(shoot.Status.LastOperation.State).To(Equal(gardencorev1beta1.LastOperationStateSucceeded))
	g.Expect(shoot.Status.AdvertisedAddresses).To(ContainElement(HaveField("URL", testFleet.Spokes[0].URL)))

	projects, err := cs.CoreV1beta1().Projects().List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(projects.Items).To(ContainElements(HaveField("Name", "e2e"), HaveField("Name", fleet.GardenProject)))

	// The fleet's own project holds a Shoot for each spoke onboarded at start,
	// pointing at it.
	fleetShoots, err := cs.CoreV1beta1().Shoots(fleet.ProjectNamespace(fleet.GardenProject)).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	for _, s := range testFleet.Spokes[:2] {
		g.Expect(fleetShoots.Items).To(ContainElement(And(
			HaveField("Name", s.Shoot),
			HaveField("Status.AdvertisedAddresses", ContainElement(HaveField("URL", s.URL))),
		)))
	}

	// The gardener-apiserver validates: a Shoot without a provider type is refused.
	bad := shoot.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "broken", Namespace: shoot.Namespace}
	bad.Spec.Provider.Type = ""
	_, err = cs.CoreV1beta1().Shoots(shoot.Namespace).Create(ctx, bad, metav1.CreateOptions{})
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
}
