package addon

import (
	"encoding/json"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
)

// renderedTTL is how long a cluster's rendered manifests stay without being
// asked for. The framework's informers resync every 10 minutes, and every
// resync asks for every cluster's manifests, so only the clusters that left
// the add-on age out.
const renderedTTL = time.Hour

// manifestScheme decodes the spoke chart's objects: the scheme the add-on
// framework decodes them with (client-go's kinds and CRDs).
var manifestScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = apiextensionsv1.AddToScheme(s)
	return s
}()

// rendered keeps each cluster's manifests, as JSON, with the inputs they were
// rendered from. A manifest the same on many clusters (all but the
// Deployment, which names its cluster) is kept once. The framework asks for
// a cluster's manifests twice on every sync of its add-on, and syncs every
// add-on at every resync of its informers and on every status change of its
// ManifestWork: at 5,000 clusters, rendering the chart again each time took
// more of the hub's CPU than everything else together. The inputs are all
// the chart's values depend on (renderInputs); when one changes, the
// manifests are rendered again.
type rendered struct {
	mu        sync.Mutex
	byCluster map[string]renderedEntry
	// manifests holds every manifest of byCluster once.
	manifests map[string]string
	now       func() time.Time
	lastSweep time.Time
	decoder   runtime.Decoder
}

type renderedEntry struct {
	inputs    string
	manifests []string
	used      time.Time
}

func newRendered() *rendered {
	return &rendered{
		byCluster: map[string]renderedEntry{},
		manifests: map[string]string{},
		now:       time.Now,
		decoder:   serializer.NewCodecFactory(manifestScheme).UniversalDeserializer(),
	}
}

// renderInputs is what a cluster's manifests are rendered from: the cluster
// (name, Kubernetes version, and its labels and annotations, where image
// registries may be), and its add-on (annotations, spec and the desired
// AddOnDeploymentConfigs by spec hash). ok is false when an
// AddOnDeploymentConfig has no spec hash yet: its content is then unknown,
// so the manifests must be rendered.
func renderInputs(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn) (inputs string, ok bool) {
	type config struct {
		addonv1alpha1.ConfigGroupResource
		addonv1alpha1.ConfigSpecHash
	}
	var configs []config
	for _, ref := range addon.Status.ConfigReferences {
		if ref.DesiredConfig == nil || ref.DesiredConfig.SpecHash == "" {
			return "", false
		}
		configs = append(configs, config{ref.ConfigGroupResource, *ref.DesiredConfig})
	}
	b, err := json.Marshal(struct {
		Cluster            string
		KubeVersion        string
		ClusterLabels      map[string]string
		ClusterAnnotations map[string]string
		AddOnNamespace     string
		AddOnName          string
		AddOnAnnotations   map[string]string
		AddOnSpec          addonv1alpha1.ManagedClusterAddOnSpec
		Configs            []config
	}{
		cluster.Name, cluster.Status.Version.Kubernetes, cluster.Labels, cluster.Annotations,
		addon.Namespace, addon.Name, addon.Annotations, addon.Spec, configs,
	})
	if err != nil {
		return "", false
	}
	return string(b), true
}

// get is the cluster's manifests, decoded afresh, if they were rendered
// from inputs.
func (r *rendered) get(cluster, inputs string) ([]runtime.Object, bool) {
	r.mu.Lock()
	e, ok := r.byCluster[cluster]
	if ok && e.inputs == inputs {
		e.used = r.now()
		r.byCluster[cluster] = e
	}
	r.mu.Unlock()
	if !ok || e.inputs != inputs {
		return nil, false
	}
	objs := make([]runtime.Object, 0, len(e.manifests))
	for _, m := range e.manifests {
		obj, _, err := r.decoder.Decode([]byte(m), nil, nil)
		if err != nil {
			return nil, false
		}
		objs = append(objs, obj)
	}
	return objs, true
}

// put keeps the cluster's manifests, rendered from inputs. Every
// renderedTTL/6 it forgets the clusters whose manifests nobody asked for in
// renderedTTL, and the manifests no cluster has any more.
func (r *rendered) put(cluster, inputs string, objs []runtime.Object) {
	encoded := make([][]byte, 0, len(objs))
	for _, obj := range objs {
		b, err := json.Marshal(obj)
		if err != nil {
			return
		}
		encoded = append(encoded, b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	manifests := make([]string, 0, len(encoded))
	for _, b := range encoded {
		m, ok := r.manifests[string(b)]
		if !ok {
			m = string(b)
			r.manifests[m] = m
		}
		manifests = append(manifests, m)
	}
	now := r.now()
	r.byCluster[cluster] = renderedEntry{inputs: inputs, manifests: manifests, used: now}
	if now.Sub(r.lastSweep) < renderedTTL/6 {
		return
	}
	r.lastSweep = now
	kept := map[string]string{}
	for c, e := range r.byCluster {
		if now.Sub(e.used) > renderedTTL {
			delete(r.byCluster, c)
			continue
		}
		for _, m := range e.manifests {
			kept[m] = m
		}
	}
	r.manifests = kept
}
