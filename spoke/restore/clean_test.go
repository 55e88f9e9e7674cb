package restore

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

func TestClean(t *testing.T) {
	mapping := func(ns string) string {
		if ns == "old" {
			return "new"
		}
		return ns
	}
	for _, tc := range []struct {
		name string
		ref  archive.ItemRef
		in   string
		want string
	}{{
		name: "metadata the cluster sets, status and tool annotations go; the rest stays",
		ref:  rConfigMaps.ref("old", "c"),
		in: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"old","uid":"u","resourceVersion":"1","generation":2,
			"creationTimestamp":"2020-01-01T00:00:00Z","managedFields":[{}],"selfLink":"/x","finalizers":["f"],
			"labels":{"a":"b"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","keep":"me"}},"data":{"n":"12345678901234567890"},"status":{}}`,
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"new","finalizers":["f"],"labels":{"a":"b"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","keep":"me"}},"data":{"n":"12345678901234567890"}}`,
	}, {
		name: "kubectl's last-applied configuration stays, in the namespace the object goes to",
		ref:  rConfigMaps.ref("old", "c"),
		in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"old","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"n\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"c\",\"namespace\":\"old\"}}\n"}}}`,
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"new","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"n\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"c\",\"namespace\":\"new\"}}"}}}`,
	}, {
		name: "a last-applied configuration that is not kubectl's JSON stays as it is",
		ref:  rConfigMaps.ref("old", "d"),
		in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","namespace":"old","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"not json"}}}`,
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","namespace":"new","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"not json"}}}`,
	}, {
		name: "a Namespace is renamed and loses the label the API server sets",
		ref:  rNamespaces.ref("", "old"),
		in:   `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"old","labels":{"kubernetes.io/metadata.name":"old"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"old\"}}"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}`,
		want: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"new","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"new\"}}"}},"spec":{"finalizers":["kubernetes"]}}`,
	}, {
		name: "a Service loses its cluster IPs and health check port",
		ref:  rServices.ref("old", "s"),
		in:   `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"old"},"spec":{"clusterIP":"10.0.0.5","clusterIPs":["10.0.0.5"],"healthCheckNodePort":30001,"ports":[{"port":80,"nodePort":30080}],"type":"LoadBalancer"}}`,
		want: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"new"},"spec":{"ports":[{"port":80,"nodePort":30080}],"type":"LoadBalancer"}}`,
	}, {
		name: "a headless Service stays headless",
		ref:  rServices.ref("old", "h"),
		in:   `{"apiVersion":"v1","kind":"Service","metadata":{"name":"h","namespace":"old"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
		want: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"h","namespace":"new"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
	}, {
		name: "a PV's claimRef is mapped and forgets the old claim's UID",
		ref:  rVolumes.ref("", "pv"),
		in: `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv","annotations":{"pv.kubernetes.io/bound-by-controller":"yes","pv.kubernetes.io/provisioned-by":"csi"}},
			"spec":{"claimRef":{"kind":"PersistentVolumeClaim","namespace":"old","name":"c","uid":"u","resourceVersion":"3"}}}`,
		want: `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv","annotations":{"pv.kubernetes.io/provisioned-by":"csi"}},
			"spec":{"claimRef":{"kind":"PersistentVolumeClaim","namespace":"new","name":"c"}}}`,
	}, {
		name: "a claim loses the binder's annotations",
		ref:  rClaims.ref("old", "c"),
		in: `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","namespace":"old","annotations":{"pv.kubernetes.io/bind-completed":"yes",
			"volume.kubernetes.io/selected-node":"n1","volume.kubernetes.io/storage-provisioner":"csi","volume.beta.kubernetes.io/storage-provisioner":"csi"}},"spec":{"volumeName":"pv"}}`,
		want: `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","namespace":"new"},"spec":{"volumeName":"pv"}}`,
	}, {
		name: "a Pod loses its node and ephemeral containers",
		ref:  rPods.ref("old", "p"),
		in:   `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"old"},"spec":{"nodeName":"n1","ephemeralContainers":[{}],"containers":[{"name":"c"}]}}`,
		want: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"new"},"spec":{"containers":[{"name":"c"}]}}`,
	}, {
		name: "a Job loses its generated selector and labels",
		ref:  rJobs.ref("old", "j"),
		in: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","namespace":"old"},"spec":{"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u"}},
			"template":{"metadata":{"labels":{"batch.kubernetes.io/controller-uid":"u","controller-uid":"u","job-name":"j"}}}}}`,
		want: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","namespace":"new"},"spec":{"template":{"metadata":{"labels":{"job-name":"j"}}}}}`,
	}, {
		name: "a Job with a manual selector keeps it",
		ref:  rJobs.ref("old", "m"),
		in:   `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"m","namespace":"old"},"spec":{"manualSelector":true,"selector":{"matchLabels":{"a":"b"}}}}`,
		want: `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"m","namespace":"new"},"spec":{"manualSelector":true,"selector":{"matchLabels":{"a":"b"}}}}`,
	}, {
		name: "bindings follow their ServiceAccounts to the mapped namespace",
		ref:  res{"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false}.ref("", "b"),
		in: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"b"},"roleRef":{"kind":"ClusterRole","name":"r"},
			"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"old"},{"kind":"ServiceAccount","name":"sa","namespace":"other"},{"kind":"User","name":"old"}]}`,
		want: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"b"},"roleRef":{"kind":"ClusterRole","name":"r"},
			"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"new"},{"kind":"ServiceAccount","name":"sa","namespace":"other"},{"kind":"User","name":"old"}]}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			obj, err := decode([]byte(tc.in))
			g.Expect(err).NotTo(HaveOccurred())
			clean(tc.ref, obj, mapping)
			want, err := decode([]byte(tc.want))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(obj).To(Equal(want))
		})
	}
}

func TestRegenerated(t *testing.T) {
	controlled := `"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]`
	owned := `"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"c","uid":"u"}]`
	for _, tc := range []struct {
		ref         archive.ItemRef
		obj         string
		regenerated bool
	}{
		{rPods.ref("n", "p"), `{"metadata":{` + controlled + `}}`, true},
		{rPods.ref("n", "p"), `{"metadata":{` + owned + `}}`, false},
		{rPods.ref("n", "p"), `{"metadata":{}}`, false},
		{rReplicaSets.ref("n", "rs"), `{"metadata":{` + controlled + `}}`, true},
		{rJobs.ref("n", "j"), `{"metadata":{` + controlled + `}}`, true},
		{rRevisions.ref("n", "r"), `{"metadata":{` + controlled + `}}`, true},
		{rDeployments.ref("n", "d"), `{"metadata":{` + controlled + `}}`, false},
		{rEndpoints.ref("n", "e"), `{"metadata":{"labels":{"endpoints.kubernetes.io/managed-by":"endpoint-controller"}}}`, true},
		{rEndpoints.ref("n", "e"), `{"metadata":{}}`, false},
		{rSlices.ref("n", "e"), `{"metadata":{"labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}}}`, true},
		{rSlices.ref("n", "e"), `{"metadata":{"labels":{"endpointslice.kubernetes.io/managed-by":"my-operator"}}}`, false},
		{rSecrets.ref("n", "t"), `{"metadata":{},"type":"kubernetes.io/service-account-token"}`, true},
		{rSecrets.ref("n", "t"), `{"metadata":{},"type":"Opaque"}`, false},
		{rConfigMaps.ref("n", "kube-root-ca.crt"), `{"metadata":{}}`, true},
		{rSAs.ref("n", "default"), `{"metadata":{"name":"default"}}`, true},
		{rSAs.ref("n", "default"), `{"metadata":{"name":"default"},"imagePullSecrets":[{"name":"r"}]}`, false},
		{rSAs.ref("n", "default"), `{"metadata":{"name":"default","annotations":{"iam":"role"}}}`, false},
		{rSAs.ref("n", "web"), `{"metadata":{"name":"web"}}`, false},
	} {
		obj, err := decode([]byte(tc.obj))
		if err != nil {
			t.Fatal(err)
		}
		if got := regenerated(tc.ref, obj) != ""; got != tc.regenerated {
			t.Errorf("regenerated(%s, %s) = %v, want %v", tc.ref, tc.obj, got, tc.regenerated)
		}
	}
	for _, r := range []archive.ItemRef{rEvents.ref("n", "e"), {Group: "events.k8s.io", Resource: "events"}, {Group: "backup.lifeboat.dev", Resource: "applicationrestores"},
		{Group: "coordination.k8s.io", Resource: "leases"}, {Resource: "nodes"}, {Group: "storage.k8s.io", Resource: "volumeattachments"}} {
		if neverRestored(r) == "" {
			t.Errorf("%s/%s would be restored", r.Group, r.Resource)
		}
	}
	if why := neverRestored(archive.ItemRef{Group: "backup.lifeboat.dev", Resource: "prebackuppods"}); why != "" {
		t.Errorf("a team's PreBackupPods are never restored: %s", why)
	}
}

func TestSelection(t *testing.T) {
	cmA, cmB := rConfigMaps.ref("a", "c"), rConfigMaps.ref("b", "c")
	dep := rDeployments.ref("a", "d")
	widget := rWidgets.ref("a", "w")
	nsA, nsB := rNamespaces.ref("", "a"), rNamespaces.ref("", "b")
	crd := rCRDs.ref("", "widgets.example.com")
	cr := rClusterRoles.ref("", "r")
	node := archive.ItemRef{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses", Name: "high"}
	labelled := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}}}
	plain := map[string]any{"metadata": map[string]any{}}
	for _, tc := range []struct {
		name string
		sel  backupv1alpha1.ResourceSelection
		ref  archive.ItemRef
		obj  map[string]any
		want verdict
	}{
		{"everything by default", backupv1alpha1.ResourceSelection{}, cmA, plain, take},
		{"cluster-scoped by default: Auto without namespaces is Include", backupv1alpha1.ResourceSelection{}, node, plain, take},
		{"included namespace", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, cmA, plain, take},
		{"other namespace", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, cmB, plain, leaveOut},
		{"excluded namespace", backupv1alpha1.ResourceSelection{ExcludedNamespaces: []backupv1alpha1.NamespaceName{"b"}}, cmB, plain, leaveOut},
		{"Namespace object follows its namespace", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, nsA, plain, take},
		{"other Namespace object", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, nsB, plain, leaveOut},
		{"Auto takes CRDs if needed", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, crd, plain, takeIfNeeded},
		{"Auto never takes other cluster-scoped kinds", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"}}, node, plain, leaveOut},
		{"Exclude takes no cluster-scoped object", backupv1alpha1.ResourceSelection{ClusterScopedResources: backupv1alpha1.ClusterScopedExclude}, cr, plain, leaveOut},
		{"Exclude takes no Namespace object", backupv1alpha1.ResourceSelection{ClusterScopedResources: backupv1alpha1.ClusterScopedExclude}, nsA, plain, leaveOut},
		{"bare core resource", backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"configmaps"}}, cmA, plain, take},
		{"bare resource of a group", backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"deployments"}}, dep, plain, take},
		{"qualified resource", backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"widgets.example.com"}}, widget, plain, take},
		{"not included", backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"widgets.example.com"}}, cmA, plain, leaveOut},
		{"excluded resource", backupv1alpha1.ResourceSelection{ExcludedResources: []backupv1alpha1.GroupResource{"deployments.apps"}}, dep, plain, leaveOut},
		{"exclusions apply to what Auto takes", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"},
			ExcludedResources: []backupv1alpha1.GroupResource{"customresourcedefinitions.apiextensions.k8s.io"}}, crd, plain, leaveOut},
		{"labels match", backupv1alpha1.ResourceSelection{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}, cmA, labelled, take},
		{"labels do not match", backupv1alpha1.ResourceSelection{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}, cmA, plain, leaveOut},
		{"labels do not apply to what Auto takes", backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"a"},
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}, nsA, plain, take},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := newSelection(&tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			obj := tc.obj
			if obj == nil {
				obj = plain
			}
			if got := sel.decide(tc.ref, obj); got != tc.want {
				t.Errorf("decide = %v, want %v", got, tc.want)
			}
		})
	}
}
