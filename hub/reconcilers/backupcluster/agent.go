package backupcluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
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
	// bindings on the cluster, and the hub ServiceAccount, Role and RoleBinding
	// of its hub credential in the cluster namespace.
	SpokeName = "lifeboat-spoke"
	// HubCredentialSecret is the Secret in SpokeNamespace holding the hub
	// kubeconfig (key hubcredential.Key).
	HubCredentialSecret = hubcredential.DefaultSecretName
	// HealthPort serves the spoke's /healthz and /readyz.
	HealthPort = 8081
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

// workloadIdentityLabel makes the Azure Workload Identity webhook project the
// federated token into the spoke's pod (and, on old webhooks, marks its
// ServiceAccount).
const workloadIdentityLabel = "azure.workload.identity/use"

// spokeLabels are on every object the agent work installs.
var spokeLabels = map[string]string{"app.kubernetes.io/name": "lifeboat-spoke", "app.kubernetes.io/managed-by": "lifeboat-hub"}

// agentWork is the ManifestWork that installs and configures the spoke on
// cluster: the spoke's CRDs and RBAC, its namespace, ServiceAccount, hub
// credential and Deployment, and the heartbeat Lease, which the spoke owns
// and the work only reads back. Deleting the work orphans everything: it must
// never take the CRDs, and every backup record on the cluster, with it.
func (r *Reconciler) agentWork(bc *fleetv1alpha1.BackupCluster, cred credential) (*workv1.ManifestWork, error) {
	static, err := spokeInstall()
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
	for i := range static.manifests {
		mw.Spec.Workload.Manifests = append(mw.Spec.Workload.Manifests, static.manifests[i])
		mw.Spec.ManifestConfigs = append(mw.Spec.ManifestConfigs, static.configs[i])
	}
	for _, obj := range []runtime.Object{
		&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: HubCredentialSecret, Namespace: SpokeNamespace, Labels: spokeLabels},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{hubcredential.Key: cred.Kubeconfig},
		},
		r.spokeDeployment(bc.Name),
	} {
		if err := add(obj, nil); err != nil {
			return nil, err
		}
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

// spokeDeployment runs the spoke manager for cluster.
func (r *Reconciler) spokeDeployment(cluster string) *appsv1.Deployment {
	podLabels := map[string]string{"app.kubernetes.io/name": "lifeboat-spoke", workloadIdentityLabel: "true"}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: SpokeName, Namespace: SpokeNamespace, Labels: spokeLabels},
		Spec: appsv1.DeploymentSpec{
			// One replica: the manager elects a leader, so more would only stand by.
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "lifeboat-spoke"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName: SpokeName,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						FSGroup:        ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "manager",
						Image: r.SpokeImage,
						Args: []string{
							"--cluster-name=" + cluster,
							"--hub-credential-secret=" + HubCredentialSecret,
							fmt.Sprintf("--health-probe-bind-address=:%d", HealthPort),
						},
						Ports: []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
						},
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						// Restores spool to the temporary directory.
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

// installed is the part of the agent work that is the same for every cluster.
type installed struct {
	manifests []workv1.Manifest
	configs   []workv1.ManifestConfigOption
}

// spokeInstall builds, once, the manifests every cluster gets alike: the
// spoke's CRDs from its chart, its namespace and ServiceAccount, and its RBAC
// from the chart's generated role.yaml, each role bound to the ServiceAccount.
var spokeInstall = sync.OnceValues(func() (installed, error) {
	var objs []runtime.Object
	crds, err := charts.SpokeCRDs()
	if err != nil {
		return installed{}, err
	}
	for _, raw := range crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(crd); err != nil {
			return installed{}, fmt.Errorf("spoke CRD: %w", err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
			return installed{}, fmt.Errorf("spoke CRD file holds a %s named %q", crd.Kind, crd.Name)
		}
		objs = append(objs, crd)
	}
	objs = append(objs,
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: SpokeNamespace, Labels: spokeLabels},
		},
		&corev1.ServiceAccount{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: SpokeName, Namespace: SpokeNamespace,
				Labels: withLabel(spokeLabels, workloadIdentityLabel, "true")},
		},
	)
	rbac, err := spokeRBAC()
	if err != nil {
		return installed{}, err
	}
	objs = append(objs, rbac...)

	var in installed
	for _, obj := range objs {
		m, c, err := manifest(obj)
		if err != nil {
			return installed{}, err
		}
		in.manifests = append(in.manifests, m)
		in.configs = append(in.configs, c)
	}
	return in, nil
})

// spokeRBAC is the spoke's ClusterRole and Roles from its chart, each bound
// to the spoke's ServiceAccount.
func spokeRBAC() ([]runtime.Object, error) {
	raw, err := charts.SpokeRBAC()
	if err != nil {
		return nil, err
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: SpokeNamespace, Name: SpokeName}
	var objs []runtime.Object
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("spoke role.yaml: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: u.GetKind(), Name: u.GetName()}
		switch u.GetKind() {
		case "ClusterRole":
			role := &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, role); err != nil {
				return nil, err
			}
			role.Labels = spokeLabels
			objs = append(objs, role, &rbacv1.ClusterRoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
				ObjectMeta: metav1.ObjectMeta{Name: role.Name, Labels: spokeLabels},
				RoleRef:    ref,
				Subjects:   []rbacv1.Subject{subject},
			})
		case "Role":
			role := &rbacv1.Role{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, role); err != nil {
				return nil, err
			}
			role.Labels = spokeLabels
			objs = append(objs, role, &rbacv1.RoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
				ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: role.Namespace, Labels: spokeLabels},
				RoleRef:    ref,
				Subjects:   []rbacv1.Subject{subject},
			})
		default:
			return nil, fmt.Errorf("spoke role.yaml holds a %s, not a ClusterRole or Role", u.GetKind())
		}
	}
	return objs, nil
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

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}
