package backupcluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/spoke/heartbeat"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

// Names of what the agent ManifestWork installs on a cluster.
const (
	// AgentWorkName is the agent ManifestWork's name in every cluster namespace.
	AgentWorkName = "lifeboat-agent"
	// SpokeNamespace is the spoke's namespace on the cluster.
	SpokeNamespace = heartbeat.Namespace
	// SpokeName names the spoke's Deployment, ServiceAccount, ClusterRole and
	// bindings on the cluster (as the spoke chart names them), and the hub
	// ServiceAccount, Role and RoleBinding of its hub credential in the cluster
	// namespace.
	SpokeName = "lifeboat-spoke"
	// HubCredentialSecret is the Secret in SpokeNamespace holding the hub
	// kubeconfig (key hubcredential.Key).
	HubCredentialSecret = hubcredential.DefaultSecretName
)

// Annotations on the agent ManifestWork about the credential it holds.
const (
	// AnnotationCredentialIssued is when the token was minted (RFC 3339).
	AnnotationCredentialIssued = "fleet.lifeboat.dev/credential-issued"
	// AnnotationCredentialExpires is when the token expires (RFC 3339).
	AnnotationCredentialExpires = "fleet.lifeboat.dev/credential-expires"
	// AnnotationCredentialServiceAccount is the UID of the hub ServiceAccount
	// the token belongs to; a ServiceAccount made anew needs a new token.
	AnnotationCredentialServiceAccount = "fleet.lifeboat.dev/credential-service-account-uid"
)

// Feedback names of the heartbeat Lease in the agent work's status.
const (
	feedbackRenewTime     = "renewTime"
	feedbackLeaseDuration = "leaseDurationSeconds"
	feedbackVersion       = "version"
	feedbackHubAccess     = "hubAccess"
)

// managedByLabel says who keeps an object: the hub, through the agent work,
// for everything the work installs (the chart would say Helm).
const managedByLabel = "app.kubernetes.io/managed-by"

// spokeLabels are on the hub credential Secret, which the chart does not hold.
var spokeLabels = map[string]string{"app.kubernetes.io/name": SpokeName, managedByLabel: "lifeboat-hub"}

// agentWork is the ManifestWork that installs and configures the spoke on
// cluster: the spoke chart rendered for the cluster (CRDs, namespace,
// ServiceAccount, RBAC, metrics Service and Deployment), the hub credential,
// and the heartbeat Lease, which the spoke owns and the work only reads back.
// Deleting the work orphans everything: it must never take the CRDs, and
// every backup record on the cluster, with it.
func (r *Reconciler) agentWork(bc *fleetv1alpha1.BackupCluster, cred credential) (*workv1.ManifestWork, error) {
	spoke, err := renderSpoke(r.SpokeImage, r.SpokeValues)
	if err != nil {
		return nil, err
	}
	mw := &workv1.ManifestWork{
		TypeMeta: metav1.TypeMeta{APIVersion: workv1.GroupVersion.String(), Kind: "ManifestWork"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      AgentWorkName,
			Namespace: bc.Name,
			Labels:    dispatch.Labels(dispatch.HubObject{Kind: Kind, Name: bc.Name, UID: bc.UID}),
			Annotations: map[string]string{
				AnnotationCredentialIssued:         cred.Issued.UTC().Format(time.RFC3339),
				AnnotationCredentialExpires:        cred.Expires.UTC().Format(time.RFC3339),
				AnnotationCredentialServiceAccount: cred.ServiceAccountUID,
			},
		},
		Spec: workv1.ManifestWorkSpec{
			DeleteOption: &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan},
		},
	}
	mw.Labels[LabelCluster] = bc.Name
	add := func(obj runtime.Object, cfg *workv1.ManifestConfigOption) error {
		m, c, err := manifest(obj)
		if err != nil {
			return err
		}
		if cfg != nil {
			c.UpdateStrategy, c.FeedbackRules = cfg.UpdateStrategy, cfg.FeedbackRules
		}
		mw.Spec.Workload.Manifests = append(mw.Spec.Workload.Manifests, m)
		mw.Spec.ManifestConfigs = append(mw.Spec.ManifestConfigs, c)
		return nil
	}
	for i := range spoke.manifests {
		if i == spoke.deployment {
			// The credential goes before the workload, as Helm orders a Secret.
			err := add(&corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: HubCredentialSecret, Namespace: SpokeNamespace, Labels: spokeLabels},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{hubcredential.Key: cred.Kubeconfig},
			}, nil)
			if err != nil {
				return nil, err
			}
			if err := add(spoke.deploymentFor(bc.Name), nil); err != nil {
				return nil, err
			}
			continue
		}
		mw.Spec.Workload.Manifests = append(mw.Spec.Workload.Manifests, spoke.manifests[i])
		mw.Spec.ManifestConfigs = append(mw.Spec.ManifestConfigs, spoke.configs[i])
	}
	// The spoke renews the Lease; the work agent only reads it back.
	lease := &coordinationv1.Lease{
		TypeMeta:   metav1.TypeMeta{APIVersion: coordinationv1.SchemeGroupVersion.String(), Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{Name: heartbeat.LeaseName, Namespace: SpokeNamespace},
	}
	err = add(lease, &workv1.ManifestConfigOption{
		UpdateStrategy: &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly},
		FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: []workv1.JsonPath{
			{Name: feedbackRenewTime, Path: ".spec.renewTime"},
			{Name: feedbackLeaseDuration, Path: ".spec.leaseDurationSeconds"},
			{Name: feedbackVersion, Path: ".metadata.annotations." + strings.ReplaceAll(heartbeat.VersionAnnotation, ".", `\.`)},
			{Name: feedbackHubAccess, Path: ".metadata.annotations." + strings.ReplaceAll(heartbeat.HubAccessAnnotation, ".", `\.`)},
		}}},
	})
	return mw, err
}

// clusterNameArg is the spoke's argument that names its cluster; the chart
// is rendered once with clusterPlaceholder in it.
const (
	clusterNameArg     = "--cluster-name="
	clusterPlaceholder = "lifeboat-cluster-placeholder"
)

// renderedSpoke is the spoke chart rendered for one image: the same manifests
// for every cluster, but for the Deployment's --cluster-name.
type renderedSpoke struct {
	manifests []workv1.Manifest
	configs   []workv1.ManifestConfigOption
	// deployment is the index of the spoke's Deployment in manifests, whose
	// manifest deploymentFor makes for each cluster from template, setting
	// argument arg of container container.
	deployment     int
	template       *appsv1.Deployment
	container, arg int
}

// renderedSpokes caches renderSpoke by image and values: rendering costs milliseconds,
// and the hub builds every cluster's agent work on each of its reconciles.
var renderedSpokes sync.Map

// renderSpoke renders the spoke chart as the agent work installs it: from the
// image, with the namespace, in SpokeNamespace, everything labelled as the
// hub's.
func renderSpoke(image string, extra map[string]any) (*renderedSpoke, error) {
	extraJSON, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("spoke values: %w", err)
	}
	key := image + "\x00" + string(extraJSON)
	if s, ok := renderedSpokes.Load(key); ok {
		return s.(*renderedSpoke), nil
	}
	// The operator's values, under what the hub decides: the cluster's name,
	// the credential, the namespace and the image.
	values := map[string]any{}
	if err := json.Unmarshal(extraJSON, &values); err != nil || values == nil {
		values = map[string]any{}
	}
	img, _ := values["image"].(map[string]any)
	if img == nil {
		img = map[string]any{}
	}
	img["ref"] = image
	values["image"] = img
	values["clusterName"] = clusterPlaceholder
	values["hubCredentialSecret"] = HubCredentialSecret
	values["createNamespace"] = true
	objs, err := charts.Render(charts.Spoke, values, SpokeNamespace)
	if err != nil {
		return nil, err
	}
	s := &renderedSpoke{deployment: -1}
	for i, obj := range objs {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[managedByLabel] = "lifeboat-hub"
		obj.SetLabels(labels)
		if obj.GetKind() == "Deployment" && obj.GetNamespace() == SpokeNamespace && obj.GetName() == SpokeName {
			s.deployment, s.template = i, &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, s.template); err != nil {
				return nil, fmt.Errorf("spoke chart: Deployment: %w", err)
			}
			if s.container, s.arg = clusterNameAt(s.template); s.container < 0 {
				return nil, fmt.Errorf("spoke chart: Deployment %s/%s has no argument %s", SpokeNamespace, SpokeName, clusterNameArg)
			}
		}
		m, c, err := manifest(obj)
		if err != nil {
			return nil, err
		}
		s.manifests = append(s.manifests, m)
		s.configs = append(s.configs, c)
	}
	if s.deployment < 0 {
		return nil, fmt.Errorf("spoke chart: no Deployment %s/%s", SpokeNamespace, SpokeName)
	}
	actual, _ := renderedSpokes.LoadOrStore(key, s)
	return actual.(*renderedSpoke), nil
}

// clusterNameAt is where dep's containers hold the argument --cluster-name
// with clusterPlaceholder (-1, -1 when none does).
func clusterNameAt(dep *appsv1.Deployment) (container, arg int) {
	for i, c := range dep.Spec.Template.Spec.Containers {
		for j, a := range c.Args {
			if a == clusterNameArg+clusterPlaceholder {
				return i, j
			}
		}
	}
	return -1, -1
}

// deploymentFor is the spoke's Deployment for cluster.
func (s *renderedSpoke) deploymentFor(cluster string) *appsv1.Deployment {
	dep := s.template.DeepCopy()
	dep.Spec.Template.Spec.Containers[s.container].Args[s.arg] = clusterNameArg + cluster
	return dep
}

// manifest is obj as the work carries it (no status, no server-set
// metadata), and its config: server-side applied by the work agent, taking
// over fields from an earlier install (e.g. by Helm).
func manifest(obj runtime.Object) (workv1.Manifest, workv1.ManifestConfigOption, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return workv1.Manifest{}, workv1.ManifestConfigOption{}, err
	}
	o := &unstructured.Unstructured{Object: u}
	delete(o.Object, "status")
	unstructured.RemoveNestedField(o.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(o.Object, "spec", "template", "metadata", "creationTimestamp")
	raw, err := json.Marshal(o.Object)
	if err != nil {
		return workv1.Manifest{}, workv1.ManifestConfigOption{}, err
	}
	gvk := o.GroupVersionKind()
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return workv1.Manifest{RawExtension: runtime.RawExtension{Raw: raw}}, workv1.ManifestConfigOption{
		ResourceIdentifier: workv1.ResourceIdentifier{Group: gvk.Group, Resource: plural.Resource, Namespace: o.GetNamespace(), Name: o.GetName()},
		UpdateStrategy: &workv1.UpdateStrategy{
			Type:            workv1.UpdateStrategyTypeServerSideApply,
			ServerSideApply: &workv1.ServerSideApplyConfig{Force: true},
		},
	}, nil
}
