package addon

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"open-cluster-management.io/addon-framework/pkg/agent"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
)

// countingAgent counts the framework's renderings of the chart.
type countingAgent struct {
	agent.AgentAddon
	renders int
}

func (c *countingAgent) Manifests(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn) ([]runtime.Object, error) {
	c.renders++
	return c.AgentAddon.Manifests(cluster, addon)
}

// newCountingSpokeAgent is the add-on with its renderings counted, and the
// same add-on to render with, without the cache, for comparison.
func newCountingSpokeAgent(t *testing.T) (spokeAgent, *countingAgent, spokeAgent) {
	t.Helper()
	a, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{SpokeImage: "registry.example/lifeboat-spoke:v1"})
	if err != nil {
		t.Fatal(err)
	}
	inner := a.(spokeAgent).AgentAddon
	counting := &countingAgent{AgentAddon: inner}
	return spokeAgent{AgentAddon: counting, rendered: newRendered()}, counting, spokeAgent{AgentAddon: inner}
}

func managedCluster(name, kubeVersion string) *clusterv1.ManagedCluster {
	c := &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
	c.Status.Version.Kubernetes = kubeVersion
	return c
}

func managedClusterAddOn(cluster string, configs ...addonv1alpha1.ConfigReference) *addonv1alpha1.ManagedClusterAddOn {
	a := &addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: cluster}}
	a.Status.ConfigReferences = configs
	return a
}

// deploymentConfig is a reference to the AddOnDeploymentConfig ns/name with
// the given desired spec hash, which cannot be read (the test has no API
// server), so a rendering that needs it fails.
func deploymentConfig(specHash string) addonv1alpha1.ConfigReference {
	return addonv1alpha1.ConfigReference{
		ConfigGroupResource: addonv1alpha1.ConfigGroupResource{Group: "addon.open-cluster-management.io", Resource: "addondeploymentconfigs"},
		DesiredConfig:       &addonv1alpha1.ConfigSpecHash{ConfigReferent: addonv1alpha1.ConfigReferent{Namespace: "ns", Name: "cfg"}, SpecHash: specHash},
	}
}

func asJSON(g Gomega, objs []runtime.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		b, err := json.Marshal(o)
		g.Expect(err).NotTo(HaveOccurred())
		out = append(out, string(b))
	}
	return out
}

// A cluster's manifests are rendered once for the same cluster and add-on:
// asked again, they are the same objects as a fresh rendering, of the same
// types, and a change the framework makes to what it was given does not
// reach the next answer. (The chart's templates come out of Helm in map
// order, so two renderings may order objects of a kind differently.) Another cluster, another Kubernetes version or
// another registry annotation renders again.
func TestManifestsAreRenderedOnceForTheSameInputs(t *testing.T) {
	g := NewWithT(t)
	a, counting, uncached := newCountingSpokeAgent(t)

	first, err := a.Manifests(managedCluster("prod--eu-1", "v1.35.5"), managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	fresh, err := uncached.render(managedCluster("prod--eu-1", "v1.35.5"), managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(asJSON(g, first)).To(ConsistOf(asJSON(g, fresh)))

	spokeDeployment(g, first).Spec.Template.Spec.Containers[0].Args = nil
	again, err := a.Manifests(managedCluster("prod--eu-1", "v1.35.5"), managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counting.renders).To(Equal(1), "asked twice for the same inputs")
	g.Expect(asJSON(g, again)).To(ConsistOf(asJSON(g, fresh)), "the cached manifests changed with the objects handed out")
	types := func(objs []runtime.Object) (out []string) {
		for _, o := range objs {
			out = append(out, fmt.Sprintf("%T", o))
		}
		return out
	}
	g.Expect(types(again)).To(ConsistOf(types(fresh)))

	other, err := a.Manifests(managedCluster("prod--eu-10", "v1.35.5"), managedClusterAddOn("prod--eu-10"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counting.renders).To(Equal(2))
	g.Expect(spokeDeployment(g, other).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--cluster-name=prod--eu-10"))

	_, err = a.Manifests(managedCluster("prod--eu-1", "v1.36.0"), managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counting.renders).To(Equal(3), "a new Kubernetes version renders again")

	mirrored := managedCluster("prod--eu-1", "v1.36.0")
	mirrored.Annotations = map[string]string{clusterv1.ClusterImageRegistriesAnnotationKey: `{"registries":[{"source":"registry.example","mirror":"mirror.example"}]}`}
	objs, err := a.Manifests(mirrored, managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counting.renders).To(Equal(4), "new cluster annotations render again")
	g.Expect(spokeDeployment(g, objs).Spec.Template.Spec.Containers[0].Image).To(Equal("mirror.example/lifeboat-spoke:v1"))
}

// An AddOnDeploymentConfig is part of the inputs by its spec hash: a new
// hash renders again (here the rendering fails, as the config cannot be
// read, and the failure is returned, not a cached answer). A reference
// without a spec hash is never cached.
func TestManifestsAreRenderedAgainForANewDeploymentConfig(t *testing.T) {
	g := NewWithT(t)
	a, counting, _ := newCountingSpokeAgent(t)
	cluster := managedCluster("prod--eu-1", "v1.35.5")

	_, err := a.Manifests(cluster, managedClusterAddOn("prod--eu-1"))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = a.Manifests(cluster, managedClusterAddOn("prod--eu-1", deploymentConfig("hash-1")))
	g.Expect(err).To(HaveOccurred(), "the AddOnDeploymentConfig is read when its hash is new")
	g.Expect(counting.renders).To(Equal(2))
	_, err = a.Manifests(cluster, managedClusterAddOn("prod--eu-1", deploymentConfig("hash-1")))
	g.Expect(err).To(HaveOccurred(), "a failed rendering is not cached")
	g.Expect(counting.renders).To(Equal(3))

	_, ok := renderInputs(cluster, managedClusterAddOn("prod--eu-1", deploymentConfig("")))
	g.Expect(ok).To(BeFalse(), "a config without a spec hash makes the inputs unknown")
}

// A cluster whose manifests nobody asked for in renderedTTL is forgotten at
// the next rendering; one asked for stays.
func TestRenderedForgetsClustersNotAskedFor(t *testing.T) {
	g := NewWithT(t)
	r := newRendered()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	objs := render(t, Options{SpokeImage: "registry.example/lifeboat-spoke:v1"}, "gone")

	r.put("gone", "in", objs)
	r.put("kept", "in", objs)
	now = now.Add(renderedTTL / 2)
	_, ok := r.get("kept", "in")
	g.Expect(ok).To(BeTrue())
	_, ok = r.get("kept", "other inputs")
	g.Expect(ok).To(BeFalse())

	now = now.Add(renderedTTL/2 + time.Minute)
	r.put("new", "in", objs)
	g.Expect(r.byCluster).To(HaveKey("kept"))
	g.Expect(r.byCluster).To(HaveKey("new"))
	g.Expect(r.byCluster).NotTo(HaveKey("gone"))
}

// A manifest the same on several clusters is kept once; one no cluster has
// any more is forgotten at the next sweep.
func TestRenderedKeepsASharedManifestOnce(t *testing.T) {
	g := NewWithT(t)
	r := newRendered()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	opts := Options{SpokeImage: "registry.example/lifeboat-spoke:v1"}
	one, two := render(t, opts, "prod--eu-1"), render(t, opts, "prod--eu-2")

	r.put("prod--eu-1", "in", one)
	r.put("prod--eu-2", "in", two)
	g.Expect(r.manifests).To(HaveLen(len(one)+1), "all but the two Deployments are the same")
	got, ok := r.get("prod--eu-2", "in")
	g.Expect(ok).To(BeTrue())
	g.Expect(spokeDeployment(g, got).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--cluster-name=prod--eu-2"))

	now = now.Add(renderedTTL + time.Minute)
	r.put("prod--eu-2", "in", two)
	g.Expect(r.byCluster).NotTo(HaveKey("prod--eu-1"))
	g.Expect(r.manifests).To(HaveLen(len(two)), "prod--eu-1's Deployment went with it")
}

// BenchmarkManifests is what a resync of the framework costs per call for a
// cluster: rendering the chart (the raw baseline) against the cached
// manifests decoded afresh.
func BenchmarkManifests(b *testing.B) {
	a, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{SpokeImage: "registry.example/lifeboat-spoke:v1"})
	if err != nil {
		b.Fatal(err)
	}
	cached := a.(spokeAgent)
	cluster, addon := managedCluster("prod--eu-1", "v1.35.5"), managedClusterAddOn("prod--eu-1")
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cached.render(cluster, addon); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cached.Manifests(cluster, addon); err != nil {
				b.Fatal(err)
			}
		}
	})
}
