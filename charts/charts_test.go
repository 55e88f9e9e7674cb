package charts

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

const spokeNamespace = "lifeboat-system"

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name, chart, namespace string
		values                 map[string]any
		extraTemplate          string // added to the chart as templates/broken.yaml
		wantError              string // a problem lint must find
	}{
		{name: "spoke", chart: Spoke, namespace: spokeNamespace, values: map[string]any{"clusterName": "lint"}},
		{name: "spoke for the agent work", chart: Spoke, namespace: spokeNamespace,
			values: map[string]any{"clusterName": "lint", "createNamespace": true, "image": map[string]any{"ref": "registry.example/spoke@sha256:0123"}}},
		{name: "hub", chart: Hub, namespace: "lifeboat-system"},
		{name: "hub in another namespace", chart: Hub, namespace: "lifeboat"},
		// Lint only logs what `required` and `fail` report; TestRenderErrors
		// checks those. A template that is not YAML is an error.
		{name: "a broken template", chart: Spoke, namespace: spokeNamespace, values: map[string]any{"clusterName": "lint"},
			extraTemplate: "kind: [Broken", wantError: "broken.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := writeChart(t, g, tc.chart)
			if tc.extraTemplate != "" {
				g.Expect(os.WriteFile(filepath.Join(dir, "templates", "broken.yaml"), []byte(tc.extraTemplate), 0o644)).To(Succeed())
			}
			linter := lint.All(dir, tc.values, tc.namespace, false)
			var problems []string
			for _, m := range linter.Messages {
				if m.Severity < support.WarningSev {
					t.Log(m.Error())
					continue
				}
				problems = append(problems, m.Error())
			}
			if tc.wantError == "" {
				g.Expect(problems).To(BeEmpty())
				return
			}
			g.Expect(problems).To(ContainElement(ContainSubstring(tc.wantError)))
		})
	}
}

func TestRenderSpokeDefaults(t *testing.T) {
	g := NewWithT(t)
	objs, err := Render(Spoke, map[string]any{"clusterName": "shoot-a"}, spokeNamespace)
	g.Expect(err).NotTo(HaveOccurred())

	t.Log("the seven CRDs first, then the templates in Helm's install order, and no Namespace unless asked")
	g.Expect(kinds(objs)).To(Equal([]string{
		"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
		"ServiceAccount", "ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "Role", "RoleBinding",
		"Service", "Deployment", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",
		"ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding",
	}))
	g.Expect(objs[0].GetName()).To(Equal("applicationbackups.backup.lifeboat.dev"))

	t.Log("a ServiceAccount for Workload Identity, bound to every role of the chart")
	sa := &corev1.ServiceAccount{}
	convert(g, find(g, objs, "ServiceAccount", spokeNamespace, "lifeboat-spoke"), sa)
	g.Expect(sa.Labels).To(HaveKeyWithValue("azure.workload.identity/use", "true"))
	g.Expect(sa.Annotations).To(BeEmpty())
	expectRolesBound(g, objs, rbacv1.Subject{Kind: "ServiceAccount", Namespace: spokeNamespace, Name: "lifeboat-spoke"},
		map[string]rbacv1.Subject{"lifeboat-spoke-restore": {Kind: "ServiceAccount", Namespace: spokeNamespace, Name: "lifeboat-spoke-restore"}})
	role := &rbacv1.Role{}
	convert(g, find(g, objs, "Role", spokeNamespace, "lifeboat-spoke"), role)
	g.Expect(role.Rules).To(ContainElement(HaveField("Resources", ContainElement("leases"))))

	t.Log("the Deployment runs the spoke for the cluster, with the values' defaults")
	dep := &appsv1.Deployment{}
	convert(g, find(g, objs, "Deployment", spokeNamespace, "lifeboat-spoke"), dep)
	g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(1))
	g.Expect(dep.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-spoke"}))
	pod := dep.Spec.Template.Spec
	g.Expect(dep.Spec.Template.Labels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-spoke", "azure.workload.identity/use": "true"}))
	g.Expect(pod.ServiceAccountName).To(Equal(sa.Name))
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("lifeboat.dev/lifeboat-spoke:0.1.0-dev"))
	g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullIfNotPresent))
	g.Expect(c.Args).To(Equal([]string{
		"--cluster-name=shoot-a",
		"--hub-credential-secret=" + hubcredential.DefaultSecretName,
		"--leader-elect=true",
		"--mover-image=lifeboat.dev/lifeboat-spoke:0.1.0-dev",
		"--mover-image-pull-policy=IfNotPresent",
		"--repository-maintenance-interval=1h",
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8443",
		"--max-backups=4",
		"--max-self-service-backups=2",
		"--max-restores=2",
		"--max-self-service-restores=1",
		"--restore-max-items=250000",
		"--restore-spool-size=2Gi",
	}))
	g.Expect(c.Env).To(Equal([]corev1.EnvVar{memoryLimitEnv}), "the container's memory limit, for the garbage collector's soft limit")
	g.Expect(c.Resources.Requests).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("128Mi")))
	g.Expect(c.Resources.Limits).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("512Mi")))
	expectManager(g, pod)
	g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"}))
	t.Log("restores spool into /tmp, an emptyDir as large as the spoke is told the spool is")
	spool := resource.MustParse("2Gi")
	g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &spool}}}))
	g.Expect(pod.NodeSelector).To(BeEmpty())
	g.Expect(pod.Tolerations).To(BeEmpty())
	g.Expect(pod.Affinity).To(BeNil())
	g.Expect(pod.PriorityClassName).To(BeEmpty())

	t.Log("a Service for the metrics")
	expectMetricsService(g, objs, spokeNamespace, "lifeboat-spoke-metrics", dep)
}

func TestRenderSpokeForTheAgentWork(t *testing.T) {
	g := NewWithT(t)
	objs, err := Render(Spoke, map[string]any{
		"clusterName":         "shoot-b",
		"createNamespace":     true,
		"hubCredentialSecret": "other-credential",
		"image":               map[string]any{"ref": "registry.example:5000/lifeboat-spoke@sha256:abcd"},
	}, spokeNamespace)
	g.Expect(err).NotTo(HaveOccurred())

	t.Log("the Namespace right after the CRDs")
	g.Expect(kinds(objs)[7]).To(Equal("Namespace"))
	g.Expect(objs[7].GetName()).To(Equal(spokeNamespace))
	dep := &appsv1.Deployment{}
	convert(g, find(g, objs, "Deployment", spokeNamespace, "lifeboat-spoke"), dep)
	c := dep.Spec.Template.Spec.Containers[0]
	g.Expect(c.Image).To(Equal("registry.example:5000/lifeboat-spoke@sha256:abcd"), "image.ref wins over repository and tag")
	g.Expect(c.Args).To(ContainElements("--cluster-name=shoot-b", "--hub-credential-secret=other-credential"))
}

func TestRenderSpokeValues(t *testing.T) {
	g := NewWithT(t)
	objs, err := Render(Spoke, map[string]any{
		"clusterName": "shoot-c",
		"image":       map[string]any{"repository": "registry.example/lifeboat/spoke", "tag": "1.2.3", "pullPolicy": "Always"},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "250m", "memory": "1Gi"},
			"limits":   map[string]any{"memory": "2Gi"},
		},
		"nodeSelector":                  map[string]any{"pool": "system"},
		"tolerations":                   []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}},
		"affinity":                      map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}}}}}},
		"priorityClassName":             "system-cluster-critical",
		"extraArgs":                     []any{"--hub-server=https://hub.example:6443", "--zap-log-level=debug"},
		"extraEnv":                      []any{map[string]any{"name": "AZURE_AUTHORITY_HOST", "value": "https://login.example/"}},
		"imagePullSecrets":              []any{"pull"},
		"serviceAccount":                map[string]any{"annotations": map[string]any{"azure.workload.identity/client-id": "00000000-0000-0000-0000-00000000000a"}},
		"podLabels":                     map[string]any{"team": "platform", "azure.workload.identity/use": "false", "app.kubernetes.io/name": "other"},
		"podAnnotations":                map[string]any{"example.com/scrape": "true"},
		"metrics":                       map[string]any{"enabled": false},
		"repositoryMaintenanceInterval": "30m",
		"limits": map[string]any{"backups": 8, "selfServiceBackups": 1, "restores": 3, "selfServiceRestores": 2,
			"restoreMaxItems": 1000000, "restoreSpoolSize": ""},
	}, spokeNamespace)
	g.Expect(err).NotTo(HaveOccurred())

	sa := &corev1.ServiceAccount{}
	convert(g, find(g, objs, "ServiceAccount", spokeNamespace, "lifeboat-spoke"), sa)
	g.Expect(sa.Annotations).To(Equal(map[string]string{"azure.workload.identity/client-id": "00000000-0000-0000-0000-00000000000a"}))
	expectRolesBound(g, objs, rbacv1.Subject{Kind: "ServiceAccount", Namespace: spokeNamespace, Name: "lifeboat-spoke"},
		map[string]rbacv1.Subject{"lifeboat-spoke-restore": {Kind: "ServiceAccount", Namespace: spokeNamespace, Name: "lifeboat-spoke-restore"}})

	dep := &appsv1.Deployment{}
	convert(g, find(g, objs, "Deployment", spokeNamespace, "lifeboat-spoke"), dep)
	pod := dep.Spec.Template.Spec
	t.Log("podLabels are added, but never replace the selector or the workload identity label")
	g.Expect(dep.Spec.Template.Labels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-spoke", "azure.workload.identity/use": "true", "team": "platform"}))
	g.Expect(dep.Spec.Template.Annotations).To(Equal(map[string]string{"example.com/scrape": "true"}))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("registry.example/lifeboat/spoke:1.2.3"))
	g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullAlways))
	g.Expect(c.Resources).To(Equal(corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
	}))
	g.Expect(c.Args).To(Equal([]string{
		"--cluster-name=shoot-c",
		"--hub-credential-secret=" + hubcredential.DefaultSecretName,
		"--leader-elect=true",
		"--mover-image=registry.example/lifeboat/spoke:1.2.3",
		"--mover-image-pull-policy=Always",
		"--repository-maintenance-interval=30m",
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=0",
		"--max-backups=8",
		"--max-self-service-backups=1",
		"--max-restores=3",
		"--max-self-service-restores=2",
		"--restore-max-items=1000000",
		"--hub-server=https://hub.example:6443",
		"--zap-log-level=debug",
	}))
	g.Expect(c.Env).To(Equal([]corev1.EnvVar{memoryLimitEnv, {Name: "AZURE_AUTHORITY_HOST", Value: "https://login.example/"}}))
	g.Expect(c.Ports).To(ConsistOf(HaveField("Name", "health")), "no metrics port")
	g.Expect(pod.NodeSelector).To(Equal(map[string]string{"pool": "system"}))
	g.Expect(pod.Tolerations).To(Equal([]corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "system", Effect: corev1.TaintEffectNoSchedule}}))
	g.Expect(pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).To(HaveLen(1))
	g.Expect(pod.PriorityClassName).To(Equal("system-cluster-critical"))
	g.Expect(pod.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "pull"}}))
	expectManager(g, pod)
	g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}), "no spool size, no sizeLimit")
	g.Expect(kinds(objs)).NotTo(ContainElement("Service"), "metrics are off")
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, chart, namespace string
		values                 map[string]any
		want                   string
	}{
		{name: "spoke without a cluster name", chart: Spoke, namespace: spokeNamespace, want: "clusterName is required"},
		{name: "spoke outside lifeboat-system", chart: Spoke, namespace: "default", values: map[string]any{"clusterName": "a"},
			want: `the spoke runs in namespace lifeboat-system`},
		{name: "hub without a spoke image", chart: Hub, namespace: "lifeboat", values: map[string]any{"spokeImage": ""}, want: "spokeImage is required"},
		{name: "no such chart", chart: "lifeboat-other", namespace: "lifeboat", want: "chart lifeboat-other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Render(tc.chart, tc.values, tc.namespace)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestRenderHubDefaults(t *testing.T) {
	g := NewWithT(t)
	const ns = "lifeboat"
	objs, err := Render(Hub, nil, ns)
	g.Expect(err).NotTo(HaveOccurred())

	t.Log("the fleet CRDs first, then the manager's objects")
	k := kinds(objs)
	g.Expect(k[:12]).To(HaveEach("CustomResourceDefinition"))
	g.Expect(k[12:]).To(Equal([]string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment"}),
		"a namespaced Role in the generated role.yaml needs a RoleBinding in the chart")

	sa := &corev1.ServiceAccount{}
	convert(g, find(g, objs, "ServiceAccount", ns, "lifeboat-hub"), sa)
	expectRolesBound(g, objs, rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: "lifeboat-hub"})

	dep := &appsv1.Deployment{}
	convert(g, find(g, objs, "Deployment", ns, "lifeboat-hub"), dep)
	g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(1))
	pod := dep.Spec.Template.Spec
	g.Expect(pod.ServiceAccountName).To(Equal(sa.Name))
	g.Expect(dep.Spec.Template.Labels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-hub"}))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("lifeboat.dev/lifeboat-hub:0.1.0-dev"))
	g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullIfNotPresent))
	g.Expect(c.Args).To(Equal([]string{
		"--spoke-image=lifeboat.dev/lifeboat-spoke:0.1.0-dev",
		"--leader-elect=true",
		"--leader-election-namespace=" + ns,
		"--system-namespace=" + ns,
		"--fleet-admin-namespaces=" + ns,
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8443",
	}))
	g.Expect(c.Resources.Requests).To(HaveKeyWithValue(corev1.ResourceCPU, resource.MustParse("100m")))
	expectManager(g, pod)
	expectMetricsService(g, objs, ns, "lifeboat-hub-metrics", dep)
}

func TestRenderHubValues(t *testing.T) {
	g := NewWithT(t)
	const ns = "lifeboat"
	objs, err := Render(Hub, map[string]any{
		"spokeImage":           "registry.example/spoke:2.0.0",
		"image":                map[string]any{"repository": "registry.example/hub", "tag": "2.0.0", "pullPolicy": "Always"},
		"resources":            map[string]any{"requests": map[string]any{"cpu": "1", "memory": "2Gi"}},
		"nodeSelector":         map[string]any{"pool": "system"},
		"tolerations":          []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
		"priorityClassName":    "system-cluster-critical",
		"extraArgs":            []any{"--catalog-pages-per-cluster=50"},
		"fleetAdminNamespaces": []any{"lifeboat", "platform-*"},
		"serviceAccount":       map[string]any{"annotations": map[string]any{"example.com/owner": "platform"}},
		"podLabels":            map[string]any{"team": "platform"},
		"dashboard":            map[string]any{"enabled": true},
	}, ns)
	g.Expect(err).NotTo(HaveOccurred())

	t.Log("the Grafana dashboard, for the dashboard sidecar")
	dashboard := &corev1.ConfigMap{}
	convert(g, find(g, objs, "ConfigMap", ns, "lifeboat-hub-dashboard"), dashboard)
	g.Expect(dashboard.Labels).To(HaveKeyWithValue("grafana_dashboard", "1"))
	want, err := files.ReadFile("lifeboat-hub/dashboards/lifeboat.json")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dashboard.Data["lifeboat.json"]).To(MatchJSON(want))

	sa := &corev1.ServiceAccount{}
	convert(g, find(g, objs, "ServiceAccount", ns, "lifeboat-hub"), sa)
	g.Expect(sa.Annotations).To(Equal(map[string]string{"example.com/owner": "platform"}))
	dep := &appsv1.Deployment{}
	convert(g, find(g, objs, "Deployment", ns, "lifeboat-hub"), dep)
	pod := dep.Spec.Template.Spec
	g.Expect(dep.Spec.Template.Labels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-hub", "team": "platform"}))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("registry.example/hub:2.0.0"))
	g.Expect(c.ImagePullPolicy).To(Equal(corev1.PullAlways))
	g.Expect(c.Args).To(ContainElements("--spoke-image=registry.example/spoke:2.0.0", "--catalog-pages-per-cluster=50",
		"--fleet-admin-namespaces=lifeboat,platform-*"))
	g.Expect(c.Resources.Requests).To(Equal(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}))
	g.Expect(pod.NodeSelector).To(Equal(map[string]string{"pool": "system"}))
	g.Expect(pod.Tolerations).To(Equal([]corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}))
	g.Expect(pod.PriorityClassName).To(Equal("system-cluster-critical"))
	expectManager(g, pod)
}

// expectManager checks the manager container's probes and that the pod
// meets the restricted Pod Security Standard.
func expectManager(g *WithT, pod corev1.PodSpec) {
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(pod.SecurityContext.RunAsUser).To(HaveValue(BeEquivalentTo(65532)))
	g.Expect(pod.SecurityContext.RunAsGroup).To(HaveValue(BeEquivalentTo(65532)))
	g.Expect(pod.SecurityContext.SeccompProfile).To(Equal(&corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}))
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	g.Expect(c.SecurityContext.Capabilities).To(Equal(&corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}))
	g.Expect(c.SecurityContext.Privileged).To(BeNil())
	g.Expect(c.Ports).To(ContainElement(corev1.ContainerPort{Name: "health", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}))
	g.Expect(c.Args).To(ContainElement("--health-probe-bind-address=:8081"))
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		g.Expect(probe).NotTo(BeNil(), path)
		g.Expect(probe.HTTPGet.Path).To(Equal(path))
		g.Expect(probe.HTTPGet.Port.String()).To(Equal("health"))
	}
}

// expectMetricsService checks that Service name selects dep's pods and
// targets their metrics port, which the manager serves.
func expectMetricsService(g *WithT, objs []*unstructured.Unstructured, namespace, name string, dep *appsv1.Deployment) {
	svc := &corev1.Service{}
	convert(g, find(g, objs, "Service", namespace, name), svc)
	for k, v := range svc.Spec.Selector {
		g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue(k, v))
	}
	g.Expect(svc.Spec.Ports).To(HaveLen(1))
	g.Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(8443))
	g.Expect(svc.Spec.Ports[0].TargetPort.String()).To(Equal("metrics"))
	c := dep.Spec.Template.Spec.Containers[0]
	g.Expect(c.Ports).To(ContainElement(corev1.ContainerPort{Name: "metrics", ContainerPort: 8443, Protocol: corev1.ProtocolTCP}))
	g.Expect(c.Args).To(ContainElement("--metrics-bind-address=:8443"))
}

// expectRolesBound checks that every ClusterRole and Role in objs is bound,
// by a binding in objs, to subject and to no one else, or, for a role named
// in others, to that subject only.
func expectRolesBound(g *WithT, objs []*unstructured.Unstructured, subject rbacv1.Subject, others ...map[string]rbacv1.Subject) {
	roles := 0
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		roles++
		var subjects []rbacv1.Subject
		for _, b := range objs {
			if b.GetKind() != o.GetKind()+"Binding" || b.GetNamespace() != o.GetNamespace() {
				continue
			}
			binding := &rbacv1.RoleBinding{} // a ClusterRoleBinding has the same fields
			convert(g, b, binding)
			if binding.RoleRef == (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: o.GetKind(), Name: o.GetName()}) {
				subjects = append(subjects, binding.Subjects...)
			}
		}
		want := subject
		for _, m := range others {
			if s, ok := m[o.GetName()]; ok {
				want = s
			}
		}
		g.Expect(subjects).To(Equal([]rbacv1.Subject{want}), "%s %s", o.GetKind(), o.GetName())
	}
	g.Expect(roles).To(BeNumerically(">", 0))
}

// writeChart writes embedded chart name to a directory, for the linter.
func writeChart(t *testing.T, g *WithT, name string) string {
	dir := t.TempDir()
	err := fs.WalkDir(files, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, p), 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	g.Expect(err).NotTo(HaveOccurred())
	return filepath.Join(dir, name)
}

func kinds(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	return out
}

func find(g *WithT, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	g.Expect(false).To(BeTrue(), "no %s %s/%s among %s", kind, namespace, name, strings.Join(have, ", "))
	return nil
}

func convert(g *WithT, u *unstructured.Unstructured, into any) {
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)).To(Succeed())
}

// rulesOf are the rules of the chart's ClusterRoles and Roles, by
// "Kind namespace/name".
func rulesOf(g *WithT, objs []*unstructured.Unstructured) map[string][]rbacv1.PolicyRule {
	out := map[string][]rbacv1.PolicyRule{}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			r := &rbacv1.ClusterRole{}
			convert(g, o, r)
			out["ClusterRole "+r.Name] = r.Rules
		case "Role":
			r := &rbacv1.Role{}
			convert(g, o, r)
			out["Role "+r.Namespace+"/"+r.Name] = r.Rules
		}
	}
	return out
}

// grants reports whether a rule grants verb on group/resource (a
// subresource as "pods/exec"), as RBAC matches it: "*" matches everything.
func grants(rule rbacv1.PolicyRule, verb, group, resource string) bool {
	return matches(rule.Verbs, verb) && matches(rule.APIGroups, group) && matches(rule.Resources, resource)
}

func matches(list []string, s string) bool {
	for _, v := range list {
		if v == "*" || v == s {
			return true
		}
	}
	return false
}

// Least privilege in the RBAC the charts install: the hub mints tokens only
// for the spokes' hub identities and reads Secrets only in lifeboat-system;
// the spoke never names the kubelet API or exec, and makes ServiceAccounts and
// mints their tokens only in lifeboat-system (the restore identity, and one
// account per BackupTarget for Entra ID). Both may
// review tokens and access for their metrics endpoints.
func TestRBACIsScoped(t *testing.T) {
	g := NewWithT(t)
	hub, err := Render(Hub, nil, "lifeboat")
	g.Expect(err).NotTo(HaveOccurred())
	for role, rules := range rulesOf(g, hub) {
		for _, rule := range rules {
			if grants(rule, "create", "", "serviceaccounts/token") {
				g.Expect(rule.ResourceNames).To(Equal([]string{"lifeboat-spoke"}), "%s: token minting only for the spokes' ServiceAccounts", role)
			}
			if grants(rule, "get", "", "secrets") || grants(rule, "list", "", "secrets") {
				g.Expect(role).To(Equal("Role lifeboat-system/lifeboat-hub"), "Secrets are read in lifeboat-system only")
				g.Expect(rule.Verbs).To(Equal([]string{"get"}))
			}
		}
	}

	spoke, err := Render(Spoke, map[string]any{"clusterName": "shoot-a"}, spokeNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	const restoreRole = "ClusterRole lifeboat-spoke-restore"
	spokeRules := rulesOf(g, spoke)
	g.Expect(spokeRules).To(HaveKey(restoreRole))
	for role, rules := range spokeRules {
		for _, rule := range rules {
			g.Expect(rule.Resources).NotTo(ContainElements(ContainSubstring("nodes/proxy")), role)
			if slices.Contains(rule.Resources, "pods/exec") {
				// Exec rules: the backup identity runs a backup's hooks; nothing else execs.
				g.Expect(role).To(Equal("ClusterRole lifeboat-spoke"), "only the backup identity execs into pods")
				g.Expect(rule.Verbs).To(ConsistOf("create", "get"))
			}
			if role == restoreRole {
				continue // writes what backups hold; only the restore identity holds it
			}
			for _, verb := range []string{"create", "update", "patch", "delete", "bind", "escalate", "impersonate"} {
				g.Expect(grants(rule, verb, "", "secrets") && grants(rule, verb, "apps", "deployments")).To(BeFalse(),
					"%s: the backup path has no wildcard %s: %+v", role, verb, rule)
			}
			// The restore identity's and the BackupTargets' own ServiceAccounts:
			// made, and their tokens minted, in lifeboat-system only.
			for _, sa := range []string{"serviceaccounts/token", "serviceaccounts"} {
				if grants(rule, "create", "", sa) || grants(rule, "patch", "", sa) {
					g.Expect(role).To(Equal("Role lifeboat-system/lifeboat-spoke"), "%s only in lifeboat-system", sa)
				}
			}
			if role != "Role lifeboat-system/lifeboat-spoke" {
				g.Expect(grants(rule, "create", "", "serviceaccounts/token")).To(BeFalse(), "%s: no token minting outside lifeboat-system", role)
			}
		}
	}
	var mintsTargetTokens, makesTargetAccounts bool
	for _, rule := range spokeRules["Role lifeboat-system/lifeboat-spoke"] {
		mintsTargetTokens = mintsTargetTokens || (grants(rule, "create", "", "serviceaccounts/token") && len(rule.ResourceNames) == 0)
		makesTargetAccounts = makesTargetAccounts || (grants(rule, "create", "", "serviceaccounts") && grants(rule, "patch", "", "serviceaccounts"))
	}
	g.Expect(mintsTargetTokens && makesTargetAccounts).To(BeTrue(), "each BackupTarget's ServiceAccount is made and its tokens minted in lifeboat-system")

	// RunLogs: the spoke reads the ones the hub sends and reports on them;
	// the hub runs the hub kind and removes the log pages it copied.
	spokeManager := spokeRules["ClusterRole lifeboat-spoke"]
	g.Expect(slices.ContainsFunc(spokeManager, func(r rbacv1.PolicyRule) bool { return grants(r, "watch", "backup.lifeboat.dev", "runlogs") })).To(BeTrue())
	g.Expect(slices.ContainsFunc(spokeManager, func(r rbacv1.PolicyRule) bool { return grants(r, "patch", "backup.lifeboat.dev", "runlogs/status") })).To(BeTrue())
	// PreBackupPods: the spoke reads them, makes their pods and deletes them.
	for _, want := range []struct{ verb, group, resource string }{
		{"watch", "backup.lifeboat.dev", "prebackuppods"}, {"patch", "backup.lifeboat.dev", "prebackuppods/status"},
		{"create", "", "pods"}, {"delete", "", "pods"}, {"create", "", "pods/exec"},
	} {
		g.Expect(slices.ContainsFunc(spokeManager, func(r rbacv1.PolicyRule) bool { return grants(r, want.verb, want.group, want.resource) })).To(BeTrue(), "%+v", want)
	}
	hubManager := rulesOf(g, hub)["ClusterRole lifeboat-hub"]
	g.Expect(slices.ContainsFunc(hubManager, func(r rbacv1.PolicyRule) bool { return grants(r, "patch", "fleet.lifeboat.dev", "runlogs/status") })).To(BeTrue())
	g.Expect(slices.ContainsFunc(hubManager, func(r rbacv1.PolicyRule) bool { return grants(r, "delete", "fleet.lifeboat.dev", "backupcatalogs") })).To(BeTrue())

	for name, objs := range map[string][]*unstructured.Unstructured{"hub": hub, "spoke": spoke} {
		var review []string
		for _, rules := range rulesOf(g, objs) {
			for _, rule := range rules {
				if grants(rule, "create", "authentication.k8s.io", "tokenreviews") || grants(rule, "create", "authorization.k8s.io", "subjectaccessreviews") {
					review = append(review, rule.Resources...)
				}
			}
		}
		g.Expect(review).To(ContainElements("tokenreviews", "subjectaccessreviews"), "%s: the metrics endpoint authenticates and authorizes", name)
	}
}

// memoryLimitEnv gives the spoke its container's memory limit.
var memoryLimitEnv = corev1.EnvVar{Name: "LIFEBOAT_MEMORY_LIMIT", ValueFrom: &corev1.EnvVarSource{
	ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "manager", Resource: "limits.memory"}}}
