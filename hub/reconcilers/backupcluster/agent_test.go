package backupcluster

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
)

// TestAgentWorkFromTheSpokeChart needs no API server: the agent work is the
// spoke chart rendered for the cluster and the hub's image, plus the hub
// credential and the heartbeat Lease.
func TestAgentWorkFromTheSpokeChart(t *testing.T) {
	g := NewWithT(t)
	const image = "registry.example:5000/lifeboat/spoke@sha256:0123456789abcdef"
	r := &Reconciler{Options: Options{SpokeImage: image}}
	work := func(cluster string) []*unstructured.Unstructured {
		bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, UID: types.UID("uid-" + cluster)}}
		mw, err := r.agentWork(bc, credential{Kubeconfig: []byte("kubeconfig"), Issued: time.Now(), Expires: time.Now().Add(time.Hour)})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(mw.Spec.ManifestConfigs).To(HaveLen(len(mw.Spec.Workload.Manifests)))
		return manifests(g, mw)
	}
	objs := work("shoot-a")

	t.Log("the chart's objects in Helm's install order, the credential before the Deployment, the Lease last")
	var order []string
	for _, o := range objs {
		order = append(order, o.GetKind())
	}
	g.Expect(order).To(Equal([]string{
		"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
		"Namespace", "ServiceAccount", "ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
		"Secret", "Deployment", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Lease",
	}))
	for _, o := range objs[:len(objs)-1] {
		g.Expect(o.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "lifeboat-hub"), o.GetKind())
	}

	t.Log("the Deployment is the chart's, for this cluster and the hub's spoke image")
	chartObjs, err := charts.Render(charts.Spoke, map[string]any{"clusterName": "shoot-a", "image": map[string]any{"ref": image}}, SpokeNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	fromChart, inWork := &appsv1.Deployment{}, &appsv1.Deployment{}
	decode(g, find(g, chartObjs, "Deployment", SpokeNamespace, SpokeName), fromChart)
	decode(g, find(g, objs, "Deployment", SpokeNamespace, SpokeName), inWork)
	g.Expect(inWork.Spec).To(Equal(fromChart.Spec))
	c := inWork.Spec.Template.Spec.Containers[0]
	g.Expect(c.Image).To(Equal(image))
	g.Expect(c.Args).To(ContainElements("--cluster-name=shoot-a", "--hub-credential-secret="+HubCredentialSecret))

	t.Log("another cluster gets the same objects but for its name")
	other := work("shoot-b")
	g.Expect(other).To(HaveLen(len(objs)))
	for i := range objs {
		if objs[i].GetKind() == "Deployment" {
			b := &appsv1.Deployment{}
			decode(g, other[i], b)
			g.Expect(b.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--cluster-name=shoot-b"))
			g.Expect(b.Spec.Template.Spec.Containers[0].Args).NotTo(ContainElement("--cluster-name=shoot-a"))
			continue
		}
		g.Expect(other[i].Object).To(Equal(objs[i].Object), "%s %s", objs[i].GetKind(), objs[i].GetName())
	}
	g.Expect(work("shoot-a")).To(Equal(objs), "the work for shoot-b changed nothing that shoot-a's work is made from")

	t.Log("the chart is rendered once per image and values")
	first, err := renderSpoke(image, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(renderSpoke(image, nil)).To(BeIdenticalTo(first))
	g.Expect(renderSpoke("registry.example/other:1", nil)).NotTo(BeIdenticalTo(first))

	t.Log("the operator's values reach every cluster's Deployment, under the hub's own")
	withValues, err := renderSpoke(image, map[string]any{
		"image":                map[string]any{"pullPolicy": "Never", "ref": "registry.example/ignored:1"},
		"extraArgs":            []any{"--heartbeat-interval=5s"},
		"allowedBlobEndpoints": []any{"https://10.0.0.5:10000/devstoreaccount1"},
		"clusterName":          "ignored",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(withValues).NotTo(BeIdenticalTo(first))
	dep := withValues.deploymentFor("shoot-a")
	g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
	g.Expect(dep.Spec.Template.Spec.Containers[0].ImagePullPolicy).To(BeEquivalentTo("Never"))
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElements("--cluster-name=shoot-a", "--heartbeat-interval=5s",
		"--allowed-blob-endpoint=https://10.0.0.5:10000/devstoreaccount1"))
}
