package addon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"open-cluster-management.io/addon-framework/pkg/addonfactory"
	"open-cluster-management.io/addon-framework/pkg/agent"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
)

// render is the add-on's manifests for cluster with opts; the add-on has no
// AddOnDeploymentConfig, so no API server is asked.
func render(t *testing.T, opts Options, cluster string) []runtime.Object {
	t.Helper()
	a, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := a.Manifests(
		&clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}},
		&addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: cluster}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func spokeDeployment(g Gomega, objs []runtime.Object) *appsv1.Deployment {
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == agentName {
			return d
		}
	}
	g.Expect(false).To(BeTrue(), "no Deployment %s among %d objects", agentName, len(objs))
	return nil
}

// The add-on installs the spoke chart rendered for each cluster without its
// CRDs (the spoke applies them): its namespace (orphaned when the add-on
// goes), RBAC and Deployment in lifeboat-system, the Deployment naming the
// cluster, the image and the framework's hub kubeconfig Secret, with the
// operator's values. The manifests stay small: the framework keeps every
// cluster's in memory.
func TestManifestsRenderTheSpokeChart(t *testing.T) {
	g := NewWithT(t)
	objs := render(t, Options{
		SpokeImage:  "registry.example/lifeboat-spoke:v1",
		SpokeValues: map[string]any{"nodeSelector": map[string]any{"pool": "system"}, "clusterName": "not-this"},
	}, "prod--eu-1")

	kinds := map[string]int{}
	for _, o := range objs {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		kinds[kind]++
		m, err := meta.Accessor(o)
		g.Expect(err).NotTo(HaveOccurred())
		switch kind {
		case "Namespace":
			g.Expect(m.GetAnnotations()).To(HaveKey(orphanAnnotation), "%s %s outlives the add-on", kind, m.GetName())
		case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		default:
			g.Expect(m.GetNamespace()).To(Equal(InstallNamespace), "%s %s", kind, m.GetName())
			g.Expect(m.GetAnnotations()).NotTo(HaveKey(orphanAnnotation), "%s %s goes with the add-on", kind, m.GetName())
		}
	}
	g.Expect(kinds).NotTo(HaveKey("CustomResourceDefinition"), "the spoke applies its CRDs itself")
	g.Expect(kinds).To(HaveKeyWithValue("Namespace", 1))
	g.Expect(kinds).To(HaveKeyWithValue("Deployment", 1))
	g.Expect(kinds).To(HaveKey("Role"))
	// The chart's NOTES are no object.
	g.Expect(len(objs)).To(Equal(sum(kinds)))
	size := 0
	for _, o := range objs {
		b, err := json.Marshal(o)
		g.Expect(err).NotTo(HaveOccurred())
		size += len(b)
	}
	t.Logf("%d objects, %d bytes of JSON", len(objs), size)
	g.Expect(size).To(BeNumerically("<", 24<<10), "the manifests the framework keeps per cluster")

	dep := spokeDeployment(g, objs)
	c := dep.Spec.Template.Spec.Containers[0]
	g.Expect(c.Image).To(Equal("registry.example/lifeboat-spoke:v1"))
	g.Expect(c.Args).To(ContainElements("--cluster-name=prod--eu-1", "--hub-credential-secret="+HubKubeconfigSecret))
	g.Expect(dep.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{"pool": "system"}))

	other := spokeDeployment(g, render(t, Options{SpokeImage: "registry.example/lifeboat-spoke:v1"}, "prod--us-2"))
	g.Expect(other.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--cluster-name=prod--us-2"))
	g.Expect(other.Spec.Template.Spec.NodeSelector).To(BeEmpty())
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// An AddOnDeploymentConfig sets a cluster's node placement, the manager's
// resources and its priority class; other containers' resources and unknown
// variables are not taken.
func TestDeploymentConfigValues(t *testing.T) {
	g := NewWithT(t)
	adc := addonv1alpha1.AddOnDeploymentConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod--eu-1", Name: "lifeboat"},
		Spec: addonv1alpha1.AddOnDeploymentConfigSpec{
			NodePlacement: &addonv1alpha1.NodePlacement{
				NodeSelector: map[string]string{"pool": "backup"},
				Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			},
			ResourceRequirements: []addonv1alpha1.ContainerResourceRequirements{
				{ContainerID: "deployments:other:manager", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("9Gi")}}},
				{ContainerID: "deployments:*:manager", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}},
			},
			CustomizedVariables: []addonv1alpha1.CustomizedVariable{{Name: "priorityClassName", Value: "backup-critical"}},
		},
	}
	values, err := DeploymentConfigValues(adc)
	g.Expect(err).NotTo(HaveOccurred())

	dep := spokeDeployment(g, renderWith(t, values, "prod--eu-1"))
	spec := dep.Spec.Template.Spec
	g.Expect(spec.NodeSelector).To(Equal(map[string]string{"pool": "backup"}))
	g.Expect(spec.Tolerations).To(ConsistOf(adc.Spec.NodePlacement.Tolerations))
	g.Expect(spec.PriorityClassName).To(Equal("backup-critical"))
	g.Expect(spec.Containers[0].Resources.Limits.Memory().String()).To(Equal("2Gi"))
	g.Expect(spec.Containers[0].Args).To(ContainElement("--cluster-name=prod--eu-1"))

	adc.Spec.CustomizedVariables = append(adc.Spec.CustomizedVariables, addonv1alpha1.CustomizedVariable{Name: "extraArgs", Value: "--hub-credential-secret=x"})
	_, err = DeploymentConfigValues(adc)
	g.Expect(err).To(MatchError(ContainSubstring(`customized variable "extraArgs" is not one the lifeboat add-on reads`)))
}

// renderWith renders the add-on with values as if an AddOnDeploymentConfig gave them.
func renderWith(t *testing.T, values addonfactory.Values, cluster string) []runtime.Object {
	t.Helper()
	return render(t, Options{SpokeImage: "img:1", SpokeValues: values}, cluster)
}

// A CSR is approved only for the cluster's own add-on identity and only when
// that cluster's registration agent asks, not the agent of a cluster whose
// name starts with the same letters.
func TestApprove(t *testing.T) {
	g := NewWithT(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	request := func(cluster string) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{
			CommonName:   agent.DefaultUser(cluster, Name, agentName),
			Organization: agent.DefaultGroups(cluster, Name),
		}}, key)
		g.Expect(err).NotTo(HaveOccurred())
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	csr := func(username, cluster string) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{Username: username, Request: request(cluster)}}
	}
	mc := &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "prod--eu-1"}}
	mca := &addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Namespace: "prod--eu-1", Name: Name}}
	g.Expect(approve(mc, mca, csr("system:open-cluster-management:prod--eu-1:x7k2p", "prod--eu-1"))).To(BeTrue())
	g.Expect(approve(mc, mca, csr("system:open-cluster-management:prod--eu-10:x7k2p", "prod--eu-1"))).To(BeFalse(), "another cluster's agent")
	g.Expect(approve(mc, mca, csr("system:open-cluster-management:prod--eu-1:x7k2p", "prod--eu-2"))).To(BeFalse(), "another cluster's identity")
	g.Expect(approve(mc, mca, csr("system:serviceaccount:default:intruder", "prod--eu-1"))).To(BeFalse(), "not an agent")
}
