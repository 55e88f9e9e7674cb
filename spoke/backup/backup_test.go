package backup_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/backup"
)

// contents is what a backup wrote, read back from the archive.
type contents struct {
	keys     []string          // "deployments.apps/shop/web", "namespaces//shop"
	objects  map[string][]byte // by key
	manifest *archive.Manifest
	log      []archive.LogEntry
	progress backup.Progress // what Run returned
	reports  []backup.Progress
}

func (c contents) has(prefix string) []string {
	var out []string
	for _, k := range c.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func key(it archive.ItemRef) string {
	res := it.Resource
	if it.Group != "" {
		res += "." + it.Group
	}
	return res + "/" + it.Namespace + "/" + it.Name
}

// runBackup backs up into a fresh DirStore, closes the archive, and reads
// it back through the verifying reader.
func runBackup(t *testing.T, opts backup.Options) contents {
	t.Helper()
	fixture(t)
	g := NewWithT(t)
	ctx := context.Background()
	store := archive.NewDirStore(t.TempDir())
	dir, err := archive.Path("", "spoke-1", "b1")
	g.Expect(err).NotTo(HaveOccurred())
	owner := archive.Owner{Namespace: "lifeboat-system"}
	if opts.Namespace != "" {
		owner.Namespace = opts.Namespace
	}
	w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: owner})
	g.Expect(err).NotTo(HaveOccurred())
	var c contents
	opts.Config, opts.Writer = cp.Config, w
	opts.Progress = func(p backup.Progress) { c.reports = append(c.reports, p) }
	c.progress, err = backup.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = w.Close(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	r, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Verify(ctx)).To(Succeed())
	c.manifest = r.Manifest()
	c.objects = map[string][]byte{}
	g.Expect(r.Items(ctx, func(it archive.Item) error {
		k := key(it.Ref())
		c.objects[k] = it.Object
		c.keys = append(c.keys, k)
		return nil
	})).To(Succeed())
	sort.Strings(c.keys)
	c.log, err = r.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// shopNamespaced is every object in shop that a backup of it must hold: what
// the fixture made and what the controllers made from it, minus events and
// the endpoints the controllers regenerate.
func shopNamespaced(t *testing.T) []string {
	return append(liveNames(t, shop, map[string]schema.GroupVersionKind{
		"configmaps":                             {Version: "v1", Kind: "ConfigMapList"},
		"secrets":                                {Version: "v1", Kind: "SecretList"},
		"services":                               {Version: "v1", Kind: "ServiceList"},
		"serviceaccounts":                        {Version: "v1", Kind: "ServiceAccountList"},
		"pods":                                   {Version: "v1", Kind: "PodList"},
		"persistentvolumeclaims":                 {Version: "v1", Kind: "PersistentVolumeClaimList"},
		"deployments.apps":                       {Group: "apps", Version: "v1", Kind: "DeploymentList"},
		"replicasets.apps":                       {Group: "apps", Version: "v1", Kind: "ReplicaSetList"},
		"statefulsets.apps":                      {Group: "apps", Version: "v1", Kind: "StatefulSetList"},
		"controllerrevisions.apps":               {Group: "apps", Version: "v1", Kind: "ControllerRevisionList"},
		"roles.rbac.authorization.k8s.io":        {Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleList"},
		"rolebindings.rbac.authorization.k8s.io": {Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBindingList"},
		"ingresses.networking.k8s.io":            {Group: "networking.k8s.io", Version: "v1", Kind: "IngressList"},
		"widgets.test.lifeboat.dev":              {Group: "test.lifeboat.dev", Version: "v1", Kind: "WidgetList"},
	}), "endpoints/shop/external", "endpointslices.discovery.k8s.io/shop/external-manual")
}

func TestBackupOfANamespaceTakesItAndWhatItNeeds(t *testing.T) {
	g := NewWithT(t)
	c := runBackup(t, backup.Options{Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{shop}}})

	want := append(shopNamespaced(t),
		"namespaces//"+shop,
		"customresourcedefinitions.apiextensions.k8s.io//"+widgetsCRD,
		"persistentvolumes//"+shopPV,
		"storageclasses.storage.k8s.io//"+storageClass,
		"clusterroles.rbac.authorization.k8s.io//"+shopViewer,
	)
	// The fixture is what we think it is: the kinds the issue names, and the
	// objects controllers make from them.
	g.Expect(want).To(ContainElements(
		"deployments.apps/shop/web", "statefulsets.apps/shop/db", "services/shop/web", "configmaps/shop/settings",
		"secrets/shop/creds", "persistentvolumeclaims/shop/data", "serviceaccounts/shop/app", "serviceaccounts/shop/default",
		"roles.rbac.authorization.k8s.io/shop/reader", "rolebindings.rbac.authorization.k8s.io/shop/viewer",
		"widgets.test.lifeboat.dev/shop/w1", "widgets.test.lifeboat.dev/shop/w2", "ingresses.networking.k8s.io/shop/web",
		"pods/shop/db-0", "configmaps/shop/kube-root-ca.crt",
	))
	g.Expect(c.keys).To(ConsistOf(want))

	// What is there but never backed up: events, regenerated endpoints,
	// Lifeboat's own records.
	events := &corev1.EventList{}
	g.Expect(cp.Client.List(context.Background(), events, client.InNamespace(shop))).To(Succeed())
	g.Expect(events.Items).NotTo(BeEmpty())
	for _, k := range c.keys {
		g.Expect(k).NotTo(Or(HavePrefix("events"), HavePrefix("applicationbackups.")))
	}

	// Objects are as the API server has them, with apiVersion and kind.
	live := &corev1.ConfigMap{}
	g.Expect(cp.Client.Get(context.Background(), types.NamespacedName{Namespace: shop, Name: "settings"}, live)).To(Succeed())
	var got corev1.ConfigMap
	g.Expect(json.Unmarshal(c.objects["configmaps/shop/settings"], &got)).To(Succeed())
	g.Expect(got.APIVersion).To(Equal("v1"))
	g.Expect(got.Kind).To(Equal("ConfigMap"))
	g.Expect(got.Data).To(Equal(map[string]string{"color": "blue"}))
	g.Expect(got.ResourceVersion).To(Equal(live.ResourceVersion))
	g.Expect(got.UID).To(Equal(live.UID))
	var dep metav1.PartialObjectMetadata
	g.Expect(json.Unmarshal(c.objects["deployments.apps/shop/web"], &dep)).To(Succeed())
	g.Expect(dep.APIVersion).To(Equal("apps/v1"))
	g.Expect(dep.Kind).To(Equal("Deployment"))

	// Progress ends where the archive ends.
	p := c.progress
	g.Expect(p.Errors).To(BeZero())
	g.Expect(p.Warnings).To(BeZero())
	g.Expect(p.ItemsDone).To(Equal(int64(len(want))))
	g.Expect(p.ItemsTotal).To(Equal(p.ItemsDone))
	g.Expect(p.ItemsDone).To(Equal(c.manifest.Counts.Items))
	g.Expect(p.BytesDone).To(Equal(c.manifest.Counts.ObjectBytes))
	g.Expect(c.reports).NotTo(BeEmpty())
	g.Expect(c.reports[len(c.reports)-1]).To(Equal(p))
	for _, r := range c.reports {
		g.Expect(r.ItemsDone).To(BeNumerically("<=", r.ItemsTotal))
	}
}

func TestSelectionFilters(t *testing.T) {
	ns := []backupv1alpha1.NamespaceName{shop}
	for _, tc := range []struct {
		name string
		sel  backupv1alpha1.ResourceSelection
		// want is the whole backup; when nil, check judges it.
		want  []string
		check func(g *WithT, c contents)
	}{{
		name: "included resources, a bare name matches its group; Auto adds the Namespace",
		sel:  backupv1alpha1.ResourceSelection{IncludedNamespaces: ns, IncludedResources: []backupv1alpha1.GroupResource{"configmaps", "deployments"}},
		want: []string{"configmaps/shop/kube-root-ca.crt", "configmaps/shop/settings", "deployments.apps/shop/api", "deployments.apps/shop/web", "namespaces//shop"},
	}, {
		name: "excluded resources, also among what Auto would add",
		sel:  backupv1alpha1.ResourceSelection{IncludedNamespaces: ns, ExcludedResources: []backupv1alpha1.GroupResource{"secrets", "pods", "persistentvolumes", "replicasets.apps"}},
		check: func(g *WithT, c contents) {
			g.Expect(c.has("secrets/")).To(BeEmpty())
			g.Expect(c.has("pods/")).To(BeEmpty())
			g.Expect(c.has("replicasets.apps/")).To(BeEmpty())
			g.Expect(c.has("persistentvolumes/")).To(BeEmpty())
			g.Expect(c.keys).To(ContainElements("configmaps/shop/settings", "deployments.apps/shop/web", "persistentvolumeclaims/shop/data",
				"storageclasses.storage.k8s.io//"+storageClass, "namespaces//shop"))
		},
	}, {
		name: "label selector; Auto's Namespace regardless of labels",
		sel:  backupv1alpha1.ResourceSelection{IncludedNamespaces: ns, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "frontend"}}},
		want: []string{"configmaps/shop/settings", "deployments.apps/shop/web", "services/shop/web", "namespaces//shop"},
	}, {
		name: "cluster-scoped Exclude takes none",
		sel:  backupv1alpha1.ResourceSelection{IncludedNamespaces: ns, ClusterScopedResources: backupv1alpha1.ClusterScopedExclude},
		check: func(g *WithT, c contents) {
			g.Expect(c.keys).To(ConsistOf(shopNamespaced(t)))
		},
	}, {
		name: "cluster-scoped Include takes all that the filters allow, Namespaces only if selected",
		sel: backupv1alpha1.ResourceSelection{IncludedNamespaces: ns, ClusterScopedResources: backupv1alpha1.ClusterScopedInclude,
			IncludedResources: []backupv1alpha1.GroupResource{"configmaps", "storageclasses.storage.k8s.io", "namespaces"}},
		want: []string{"configmaps/shop/kube-root-ca.crt", "configmaps/shop/settings", "namespaces//shop",
			"storageclasses.storage.k8s.io//" + storageClass, "storageclasses.storage.k8s.io//lifeboat-test-unused",
			"storageclasses.storage.k8s.io//" + fleet.StorageClass}, // the control plane's default class
	}, {
		name: "a selected namespace that does not exist is a warning",
		sel:  backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{shop, "nowhere"}, IncludedResources: []backupv1alpha1.GroupResource{"configmaps"}},
		check: func(g *WithT, c contents) {
			g.Expect(c.keys).To(ConsistOf("configmaps/shop/kube-root-ca.crt", "configmaps/shop/settings", "namespaces//shop"))
			g.Expect(c.progress.Warnings).To(Equal(int64(1)))
			g.Expect(c.manifest.Counts.Warnings).To(Equal(int64(1)))
			g.Expect(c.log).To(ContainElement(And(
				HaveField("Level", archive.LevelWarning),
				HaveField("Message", ContainSubstring("namespace nowhere does not exist")))))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			sel := tc.sel
			c := runBackup(t, backup.Options{Selection: &sel})
			if tc.want != nil {
				g.Expect(c.keys).To(ConsistOf(tc.want))
			}
			if tc.check != nil {
				tc.check(g, c)
			}
		})
	}
}

func TestBackupOfAllNamespacesButSome(t *testing.T) {
	g := NewWithT(t)
	c := runBackup(t, backup.Options{Selection: &backupv1alpha1.ResourceSelection{ExcludedNamespaces: []backupv1alpha1.NamespaceName{other}}})

	// Auto without named namespaces is the whole cluster: Include.
	g.Expect(c.keys).To(ContainElements(shopNamespaced(t)))
	g.Expect(c.keys).To(ContainElements("namespaces//shop", "namespaces//default", "namespaces//kube-system",
		"clusterroles.rbac.authorization.k8s.io//"+otherViewer, "customresourcedefinitions.apiextensions.k8s.io//"+gadgetsCRD,
		"persistentvolumes//"+otherPV))
	g.Expect(c.keys).NotTo(ContainElement("namespaces//other"))
	for _, k := range c.keys {
		g.Expect(k).NotTo(ContainSubstring("/other/"))
		g.Expect(k).NotTo(Or(HavePrefix("events"), HavePrefix("leases."), HavePrefix("nodes/"), HavePrefix("applicationbackups.")))
	}
	// What the cluster regenerates is left out; objects of the same resources
	// that people manage are kept.
	g.Expect(c.has("endpoints/shop/")).To(ConsistOf("endpoints/shop/external"))
	g.Expect(c.has("endpointslices.discovery.k8s.io/shop/")).To(ConsistOf("endpointslices.discovery.k8s.io/shop/external-manual"))
	g.Expect(c.has("ipaddresses.networking.k8s.io/")).To(BeEmpty())
	g.Expect(c.has("apiservices.apiregistration.k8s.io/")).To(BeEmpty())
	ips := &unstructured.UnstructuredList{}
	ips.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "IPAddressList"})
	g.Expect(cp.Client.List(context.Background(), ips)).To(Succeed())
	g.Expect(ips.Items).NotTo(BeEmpty())
	g.Expect(c.progress.Errors).To(BeZero())
}

func TestSelfServiceBackupTakesOnlyItsNamespace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sel      *backupv1alpha1.ResourceSelection
		warnings int64
	}{
		{name: "no selection", sel: nil},
		{name: "a selection that asks for another namespace and every cluster-scoped object", warnings: 1, sel: &backupv1alpha1.ResourceSelection{
			IncludedNamespaces:     []backupv1alpha1.NamespaceName{other, shop},
			ClusterScopedResources: backupv1alpha1.ClusterScopedInclude,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := runBackup(t, backup.Options{Namespace: shop, Selection: tc.sel})
			g.Expect(c.keys).To(ConsistOf(append(shopNamespaced(t),
				"namespaces//"+shop,
				"customresourcedefinitions.apiextensions.k8s.io//"+widgetsCRD,
			)))
			g.Expect(c.progress.Warnings).To(Equal(tc.warnings))
			if tc.warnings > 0 {
				g.Expect(c.log).To(ContainElement(And(
					HaveField("Level", archive.LevelWarning),
					HaveField("Message", And(ContainSubstring("only its own namespace shop"), ContainSubstring("includedNamespaces other"))))))
			}
		})
	}
}

func TestInvalidLabelSelectorIsRefused(t *testing.T) {
	g := NewWithT(t)
	sel := &backupv1alpha1.ResourceSelection{LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}}
	g.Expect(backup.ValidateSelection(sel)).To(MatchError(backup.ErrInvalidSelection))
	_, err := backup.Run(context.Background(), backup.Options{Config: cp.Config, Writer: discardWriter{}, Selection: sel})
	g.Expect(err).To(MatchError(backup.ErrInvalidSelection))
}

type discardWriter struct{}

func (discardWriter) Add(archive.Item) error                      { return nil }
func (discardWriter) Log(archive.Level, *archive.ItemRef, string) {}
