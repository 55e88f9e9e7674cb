package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// The add-on framework writes a ManifestWork of about 100 KiB (the spoke's
// chart) for every cluster and caches those itself; the hub manager's cache
// holds only the works dispatch wrote, so that they are not held twice.
func TestManagerCachesOnlyItsOwnWorks(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := fleet.StartControlPlane(ctx, "hubcache", filepath.Join(t.TempDir(), "hub"), false)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(cp.Stop)
	g.Expect(fleet.InstallHubCRDs(ctx, cp.Client)).To(Succeed())
	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c1"}})).To(Succeed())

	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	own, err := dispatch.Work("c1", dispatch.HubObject{Kind: "Backup", Namespace: "team", Name: "b", UID: "u", Generation: 1}, cm, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp.Client.Create(ctx, own)).To(Succeed())
	addOnWork := &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Namespace: "c1", Name: "addon-lifeboat-deploy-0", Labels: map[string]string{addonv1alpha1.AddonLabelKey: addon.Name}},
		Spec:       *own.Spec.DeepCopy(),
	}
	g.Expect(cp.Client.Create(ctx, addOnWork)).To(Succeed())

	c, err := cache.New(cp.Config, cache.Options{Scheme: fleet.Scheme, ByObject: cachedObjects()})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())
	works := &workv1.ManifestWorkList{}
	g.Expect(c.List(ctx, works)).To(Succeed())
	g.Expect(works.Items).To(ConsistOf(HaveField("ObjectMeta.Name", own.Name)))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(own), &workv1.ManifestWork{})).To(Succeed())
}
