package discovery

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Gardener is a Source that reads Shoots (core.gardener.cloud/v1beta1) from a
// garden cluster's API server.
type Gardener struct {
	projects []string
	selector labels.Selector
	client   client.Client
	metadata metadata.Interface
}

var _ Source = (*Gardener)(nil)

var (
	gardenScheme = runtime.NewScheme()
	shootGVR     = gardencorev1beta1.SchemeGroupVersion.WithResource("shoots")
)

func init() {
	if err := gardencorev1beta1.AddToScheme(gardenScheme); err != nil {
		panic(err)
	}
}

// pageSize is how many shoots one list request returns at most.
const pageSize = 500

// NewGardener returns a Source for the shoots of projects (every project the
// kubeconfig can see when empty) whose labels match selector (everything when
// nil). It checks the kubeconfig but does not contact the garden.
//
// The kubeconfig comes from a Secret, so it must be self-contained: exec and
// auth-provider plugins and references to local files are refused, as they
// would run commands or read files of the hub manager.
func NewGardener(kubeconfig []byte, projects []string, selector labels.Selector) (*Gardener, error) {
	cfg, err := RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	if selector == nil {
		selector = labels.Everything()
	}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{gardencorev1beta1.SchemeGroupVersion})
	mapper.Add(gardencorev1beta1.SchemeGroupVersion.WithKind("Shoot"), meta.RESTScopeNamespace)
	mapper.Add(gardencorev1beta1.SchemeGroupVersion.WithKind("ShootList"), meta.RESTScopeNamespace)
	// Shoots are large; protobuf (which the gardener-apiserver serves) lists
	// them several times faster than JSON.
	protoCfg := rest.CopyConfig(cfg)
	protoCfg.ContentType = runtime.ContentTypeProtobuf
	protoCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c, err := client.New(protoCfg, client.Options{Scheme: gardenScheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("building a Gardener client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a Gardener client: %w", err)
	}
	return &Gardener{projects: projects, selector: selector, client: c, metadata: md}, nil
}

// RESTConfig parses a garden kubeconfig and refuses what a kubeconfig from a
// Secret must not do: run commands, use auth-provider plugins, read files.
func RESTConfig(kubeconfig []byte) (*rest.Config, error) {
	raw, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("parsing the kubeconfig: %w", err)
	}
	for name, a := range raw.AuthInfos {
		switch {
		case a.Exec != nil:
			return nil, fmt.Errorf("kubeconfig user %q runs an exec plugin, which discovery does not allow: use a token or client certificate", name)
		case a.AuthProvider != nil:
			return nil, fmt.Errorf("kubeconfig user %q uses the auth-provider plugin %q, which discovery does not allow: use a token or client certificate", name, a.AuthProvider.Name)
		case a.TokenFile != "" || a.ClientCertificate != "" || a.ClientKey != "":
			return nil, fmt.Errorf("kubeconfig user %q refers to a local file, which discovery does not allow: embed the token or certificate data", name)
		}
	}
	for name, c := range raw.Clusters {
		if c.CertificateAuthority != "" {
			return nil, fmt.Errorf("kubeconfig cluster %q refers to a local CA file, which discovery does not allow: embed certificate-authority-data", name)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig is not usable: %w", err)
	}
	cfg.UserAgent = "lifeboat-discovery"
	cfg.Timeout = 30 * time.Second
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	return cfg, nil
}

// List lists the selected shoots, one project at a time (a few in parallel), or
// all at once when no project is given.
func (g *Gardener) List(ctx context.Context) ([]Shoot, error) {
	namespaces := []string{""}
	if len(g.projects) > 0 {
		namespaces = make([]string, len(g.projects))
		for i, p := range g.projects {
			namespaces[i] = ProjectNamespace(p)
		}
	}
	var (
		mu     sync.Mutex
		shoots []Shoot
		failed = map[string]error{}
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 8)
	)
	for i, ns := range namespaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			found, err := g.listNamespace(ctx, ns)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				project := ""
				if len(g.projects) > 0 {
					project = g.projects[i]
				}
				failed[project] = err
				return
			}
			shoots = append(shoots, found...)
		}()
	}
	wg.Wait()
	sort.Slice(shoots, func(i, j int) bool { return shoots[i].ClusterName < shoots[j].ClusterName })
	if len(failed) > 0 {
		return shoots, &ListError{Projects: failed}
	}
	return shoots, nil
}

func (g *Gardener) listNamespace(ctx context.Context, ns string) ([]Shoot, error) {
	var out []Shoot
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: g.selector}, client.Limit(pageSize)}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	cont := ""
	for {
		list := &gardencorev1beta1.ShootList{}
		if err := g.client.List(ctx, list, append(opts, client.Continue(cont))...); err != nil {
			return nil, err
		}
		for i := range list.Items {
			out = append(out, FromGardener(&list.Items[i]))
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// Watch runs one metadata-only informer per project (or one for all projects)
// and calls notify on every add, update and delete of a selected shoot. The
// shoots that exist when it starts are announced by one notify once every
// informer has listed them, not one per shoot.
func (g *Gardener) Watch(ctx context.Context, notify func()) error {
	namespaces := []string{metav1.NamespaceAll}
	if len(g.projects) > 0 {
		namespaces = namespaces[:0]
		for _, p := range g.projects {
			namespaces = append(namespaces, ProjectNamespace(p))
		}
	}
	selector := g.selector.String()
	var mu sync.Mutex
	serialized := func() {
		mu.Lock()
		defer mu.Unlock()
		notify()
	}
	handler := toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, initial bool) {
			if !initial {
				serialized()
			}
		},
		UpdateFunc: func(_, _ any) { serialized() },
		DeleteFunc: func(any) { serialized() },
	}
	var (
		wg     sync.WaitGroup
		synced []toolscache.InformerSynced
	)
	for _, ns := range namespaces {
		inf := metadatainformer.NewFilteredMetadataInformer(g.metadata, shootGVR, ns, 0, toolscache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = selector }).Informer()
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return err
		}
		synced = append(synced, reg.HasSynced)
		wg.Add(1)
		go func() {
			defer wg.Done()
			inf.RunWithContext(ctx)
		}()
	}
	if toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		serialized()
	}
	wg.Wait()
	return nil
}
