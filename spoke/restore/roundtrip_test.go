package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// shop makes namespace shop with one of each kind a user deploys, waits
// until the cluster has acted on them (claim bound, Deployment and Job
// pods made, endpoints made) and captures it all as a backup does.
func shop(t *testing.T, ctx context.Context) []archive.Item {
	g := NewWithT(t)
	const n = "shop"
	postJSON(t, ctx, rNamespaces, "", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"shop","pod-security.kubernetes.io/enforce":"baseline"},"annotations":{"owner":"shop-team@example.com"}}}`)
	postJSON(t, ctx, rCRDs, "", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"},
		"spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},
		"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}`)
	postJSON(t, ctx, rStorageClasses, "", `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"shop-manual"},"provisioner":"kubernetes.io/no-provisioner","reclaimPolicy":"Retain","volumeBindingMode":"Immediate"}`)
	postJSON(t, ctx, rVolumes, "", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"shop-data","labels":{"app":"db"}},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain","storageClassName":"shop-manual","hostPath":{"path":"/tmp/shop-data"}}}`)
	postJSON(t, ctx, rClusterRoles, "", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"shop-widget-viewer"},"rules":[{"apiGroups":["example.com"],"resources":["widgets"],"verbs":["get","list"]}]}`)
	g.Eventually(func() error { return (&run{api: mustAPI(t)}).crdServed(ctx, "widgets.example.com") }).WithTimeout(time.Minute).Should(Succeed())
	// The default ServiceAccount gets something a person set, before the
	// pods that it gives its image pull secrets to.
	g.Eventually(func() map[string]any { return getJSON(t, ctx, rSAs, n, "default") }).WithTimeout(time.Minute).ShouldNot(BeNil())
	g.Expect(raw(t).Patch("application/merge-patch+json").AbsPath(objectPath(rSAs.ref("", ""), n, "default")).
		Body([]byte(`{"imagePullSecrets":[{"name":"regcred"}]}`)).Do(ctx).Error()).To(Succeed())

	for _, o := range []struct {
		r    res
		json string
	}{
		{rSecrets, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"regcred"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"eyJhdXRocyI6e319"}}`},
		{rSecrets, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","labels":{"app":"db"}},"type":"Opaque","data":{"password":"czNjcjN0"}}`},
		{rSAs, `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"web","annotations":{"purpose":"frontend"}},"imagePullSecrets":[{"name":"regcred"}]}`},
		{rSecrets, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"web-token","annotations":{"kubernetes.io/service-account.name":"web"}},"type":"kubernetes.io/service-account-token"}`},
		{rConfigMaps, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","labels":{"app":"web"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","note":"keep me"}},"data":{"mode":"production","big":"12345678901234567890"}}`},
		{rRoles, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"config-reader"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","list","watch"]}]}`},
		{rRoleBindings, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"web-reads-config"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"config-reader"},"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"shop"}]}`},
		{rRoleBindings, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"web-views-widgets"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"shop-widget-viewer"},"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"shop"}]}`},
		{rClaims, `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"shop-manual","volumeName":"shop-data","resources":{"requests":{"storage":"1Gi"}}}}`},
		{rServices, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}`},
		{rServices, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"db"},"spec":{"clusterIP":"None","selector":{"app":"db"},"ports":[{"port":5432}]}}`},
		{rIngresses, `{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"web","annotations":{"example.com/rewrite":"/"}},"spec":{"rules":[{"host":"shop.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"name":"http"}}}}]}}]}}`},
		{rWidgets, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","labels":{"app":"web"}},"spec":{"size":3,"colour":"blue","nested":{"list":[1,2,3]}}}`},
		{rWidgets, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":9007199254740993}}`},
		{rDeployments, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
			"template":{"metadata":{"labels":{"app":"web"}},"spec":{"serviceAccountName":"web","containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":8080}],
			"envFrom":[{"configMapRef":{"name":"settings"}}]}]}}}}`},
		{rStatefulSets, `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},"spec":{"serviceName":"db","replicas":1,"selector":{"matchLabels":{"app":"db"}},
			"template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"postgres:17","env":[{"name":"PGPASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}}],
			"volumeMounts":[{"name":"data","mountPath":"/var/lib/postgresql"}]}],"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]}}}}`},
		{rJobs, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"migrate"},"spec":{"backoffLimit":1,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"m","image":"busybox","command":["true"]}]}}}}`},
		{rPods, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"debug","labels":{"app":"debug"}},"spec":{"containers":[{"name":"sh","image":"busybox","command":["sleep","3600"]}]}}`},
	} {
		postJSON(t, ctx, o.r, n, o.json)
	}

	// Wait until the controllers have done their part, so that the backup
	// holds what they made.
	g.Eventually(func() string { return str(getJSON(t, ctx, rClaims, n, "data"), "status", "phase") }).WithTimeout(time.Minute).Should(Equal("Bound"))
	g.Eventually(func() []archive.Item { return capture(t, ctx, rReplicaSets, n) }).WithTimeout(time.Minute).Should(HaveLen(1))
	g.Eventually(func() []archive.Item { return capture(t, ctx, rPods, n) }).WithTimeout(time.Minute).Should(HaveLen(5)) // 2 web, db-0, migrate, debug
	g.Eventually(func() []archive.Item { return capture(t, ctx, rSlices, n) }).WithTimeout(time.Minute).ShouldNot(BeEmpty())
	g.Eventually(func() []archive.Item { return capture(t, ctx, rRevisions, n) }).WithTimeout(time.Minute).ShouldNot(BeEmpty())
	g.Eventually(func() []byte {
		return []byte(str(getJSON(t, ctx, rSecrets, n, "web-token"), "data", "token"))
	}).WithTimeout(time.Minute).ShouldNot(BeEmpty())

	var items []archive.Item
	items = append(items, capture(t, ctx, rCRDs, "", "widgets.example.com")...)
	items = append(items, capture(t, ctx, rNamespaces, "", n)...)
	items = append(items, capture(t, ctx, rStorageClasses, "", "shop-manual")...)
	items = append(items, capture(t, ctx, rVolumes, "", "shop-data")...)
	items = append(items, capture(t, ctx, rClusterRoles, "", "shop-widget-viewer")...)
	for _, r := range []res{rConfigMaps, rSecrets, rSAs, rServices, rEndpoints, rSlices, rClaims, rPods, rEvents, rDeployments,
		rReplicaSets, rStatefulSets, rRevisions, rJobs, rIngresses, rRoles, rRoleBindings, rWidgets} {
		items = append(items, capture(t, ctx, r, n)...)
	}
	return items
}

func mustAPI(t *testing.T) *api {
	a, err := newAPI(cp.Config, 100, 200, "test")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The must-show: back up a namespace, delete it until it is really gone,
// restore it, and find every object as it was on the fields a user owns.
// Then the same backup restores into a mapped namespace beside the
// original without taking its volume.
func TestRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	items := shop(t, ctx)
	store, dir := writeBackup(t, items)

	deleteAndWait(t, ctx, rNamespaces, "", "shop")
	deleteAndWait(t, ctx, rCRDs, "", "widgets.example.com")
	deleteAndWait(t, ctx, rStorageClasses, "", "shop-manual")
	deleteAndWait(t, ctx, rClusterRoles, "", "shop-widget-viewer")
	// The volume is retained, still naming the deleted claim's UID. The
	// restore does not wait for it to show Released.
	g.Expect(str(getJSON(t, ctx, rVolumes, "", "shop-data"), "spec", "claimRef", "uid")).NotTo(BeEmpty())

	var log logLines
	result, err := Run(ctx, options(openBackup(t, store, dir), &log))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(result.Failed).To(BeZero(), "log:\n%s", &log)
	g.Expect(result.Errors).To(BeZero(), "log:\n%s", &log)
	g.Expect(result.Total).To(BeEquivalentTo(len(items)))
	g.Expect(result.Done()).To(Equal(result.Total))

	restored := 0
	for _, it := range items {
		ref := it.Ref()
		orig, err := decode(it.Object)
		g.Expect(err).NotTo(HaveOccurred())
		if why := regenerated(ref, orig); why != "" || neverRestored(ref) != "" {
			continue
		}
		r := res{ref.Group, ref.Version, ref.Resource, ref.Kind, ref.Namespace != ""}
		live := getJSON(t, ctx, r, ref.Namespace, ref.Name)
		g.Expect(live).NotTo(BeNil(), "%s was not restored; log:\n%s", ref, &log)
		g.Expect(diff("", userFields(ref, orig), userFields(ref, live))).To(BeEmpty(), "%s differs from the original", ref)
		restored++
	}
	g.Expect(restored).To(BeEquivalentTo(result.Restored + result.Skipped))

	// Every item has exactly one result in the log, and the results add up
	// to the counts.
	outcomes := log.outcomes()
	g.Expect(outcomes).To(HaveLen(len(items)), "log:\n%s", &log)
	count := map[Outcome]int64{}
	for _, it := range items {
		ref := it.Ref()
		out, ok := outcomes[ref.Resource+"/"+ref.Namespace+"/"+ref.Name]
		g.Expect(ok).To(BeTrue(), "%s has no result; log:\n%s", ref, &log)
		count[out]++
	}
	g.Expect([]int64{count[Created], count[Updated], count[Existed], count[LeftOut], count[Failed]}).To(Equal(
		[]int64{result.Restored - result.Updated, result.Updated, result.Skipped, result.Excluded, result.Failed}))
	g.Expect(count[LeftOut]).NotTo(BeZero())
	g.Expect(log.about(archive.LevelInfo, rSecrets.ref("shop", "web-token"))).To(ConsistOf(
		"Left out: service-account token Secrets, which the cluster issues again"))
	t.Logf("restored %d objects, %d left out: %+v\n%s", restored, result.Excluded, result, &log)

	// What the cluster makes again was not restored.
	g.Expect(getJSON(t, ctx, rSecrets, "shop", "web-token")).To(BeNil(), "a service-account token Secret was restored")
	// The claim is bound to its retained volume again.
	g.Eventually(func() string { return str(getJSON(t, ctx, rClaims, "shop", "data"), "status", "phase") }).
		WithTimeout(time.Minute).Should(Equal("Bound"))
	g.Expect(str(getJSON(t, ctx, rVolumes, "", "shop-data"), "spec", "claimRef", "namespace")).To(Equal("shop"))
	g.Expect(log.about(archive.LevelInfo, rClaims.ref("shop", "data"))).To(ContainElement(ContainSubstring("will bind to it again")))
	g.Expect(str(getJSON(t, ctx, rClaims, "shop", "data"), "spec", "volumeName")).To(Equal("shop-data"))
	// The Deployment's controller runs again: a new ReplicaSet owned by the restored Deployment.
	dep := getJSON(t, ctx, rDeployments, "shop", "web")
	g.Eventually(func() string {
		for _, it := range capture(t, ctx, rReplicaSets, "shop") {
			rs, _ := decode(it.Object)
			if owner := asMap(list(rs, "metadata", "ownerReferences")[0]); str(owner, "uid") == str(dep, "metadata", "uid") {
				return "owned"
			}
		}
		return ""
	}).WithTimeout(time.Minute).Should(Equal("owned"))

	t.Run("mapped namespace beside the original", func(t *testing.T) {
		g := NewWithT(t)
		var log logLines
		opts := options(openBackup(t, store, dir), &log)
		opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"shop": "shop-copy"}
		result, err := Run(ctx, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(result.Failed).To(BeZero(), "log:\n%s", &log)

		copyNS := getJSON(t, ctx, rNamespaces, "", "shop-copy")
		g.Expect(stringMap(copyNS, "metadata", "labels")).To(HaveKeyWithValue("team", "shop"))
		g.Expect(stringMap(copyNS, "metadata", "labels")).To(HaveKeyWithValue("kubernetes.io/metadata.name", "shop-copy"))
		for _, name := range []string{"web-reads-config", "web-views-widgets"} {
			rb := getJSON(t, ctx, rRoleBindings, "shop-copy", name)
			g.Expect(str(asMap(list(rb, "subjects")[0]), "namespace")).To(Equal("shop-copy"))
		}
		g.Expect(getJSON(t, ctx, rWidgets, "shop-copy", "w1")).NotTo(BeNil())
		g.Expect(getJSON(t, ctx, rConfigMaps, "shop-copy", "settings")).NotTo(BeNil())

		// The original volume stays with the original claim; the copy's claim
		// does not name it.
		pv := getJSON(t, ctx, rVolumes, "", "shop-data")
		g.Expect(str(pv, "spec", "claimRef", "namespace")).To(Equal("shop"))
		g.Expect(str(pv, "status", "phase")).To(Equal("Bound"))
		g.Expect(str(getJSON(t, ctx, rClaims, "shop-copy", "data"), "spec", "volumeName")).To(BeEmpty())
		g.Expect(log.about(archive.LevelWarning, rVolumes.ref("", "shop-data"))).To(ContainElement(ContainSubstring("belongs to claim shop/data")))
		g.Expect(log.about(archive.LevelWarning, rClaims.ref("shop", "data"))).To(ContainElement(ContainSubstring("without its volume shop-data")))
		g.Expect(str(getJSON(t, ctx, rClaims, "shop", "data"), "status", "phase")).To(Equal("Bound"))
	})
}

// userFields is what a user owns of an object: everything but status and
// the metadata the cluster sets, and minus the fields that a restore
// documents it drops because the cluster sets them again.
func userFields(ref archive.ItemRef, obj map[string]any) map[string]any {
	obj, _ = decode(mustJSON(obj)) // a copy
	out := map[string]any{}
	for k, v := range obj {
		if k != "metadata" && k != "status" {
			out[k] = v
		}
	}
	labels := stringMap(obj, "metadata", "labels")
	delete(labels, "kubernetes.io/metadata.name")
	annotations := stringMap(obj, "metadata", "annotations")
	for _, a := range []string{"deployment.kubernetes.io/revision",
		"pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"} {
		delete(annotations, a)
	}
	out["labels"], out["annotations"] = labels, annotations
	out["name"], out["namespace"] = str(obj, "metadata", "name"), str(obj, "metadata", "namespace")
	out["finalizers"] = list(obj, "metadata", "finalizers")
	spec := mapOf(obj, "spec")
	switch ref.Kind {
	case "Service":
		if spec["clusterIP"] != "None" {
			delete(spec, "clusterIP")
			delete(spec, "clusterIPs")
		}
	case "Job":
		delete(spec, "selector")
		deleteKeys(mapOf(mapOf(spec, "template"), "metadata"), "labels", jobUIDLabels...)
	case "PersistentVolume":
		delete(mapOf(spec, "claimRef"), "uid")
		delete(mapOf(spec, "claimRef"), "resourceVersion")
	case "PersistentVolumeClaim":
		delete(annotations, "volume.beta.kubernetes.io/storage-provisioner")
		delete(annotations, "volume.kubernetes.io/storage-provisioner")
	case "Pod":
		delete(spec, "nodeName")
	}
	for _, k := range []string{"labels", "annotations"} {
		if m, _ := out[k].(map[string]string); len(m) == 0 {
			out[k] = nil
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// A PersistentVolume restored on its own cluster where it no longer exists
// is pre-bound to its claim in the mapped namespace, and the claim binds to
// it.
func TestVolumeRestoredElsewhereIsPreBoundToItsMappedClaim(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	pv := item(rVolumes, "", "far-data", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"far-data","uid":"u1","resourceVersion":"7",
		"annotations":{"pv.kubernetes.io/bound-by-controller":"yes"}},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain","storageClassName":"",
		"hostPath":{"path":"/tmp/far"},"claimRef":{"kind":"PersistentVolumeClaim","namespace":"far","name":"data","uid":"old-claim-uid","resourceVersion":"99","apiVersion":"v1"}},
		"status":{"phase":"Bound"}}`)
	pvc := item(rClaims, "far", "data", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"far","uid":"old-claim-uid",
		"annotations":{"pv.kubernetes.io/bind-completed":"yes","pv.kubernetes.io/bound-by-controller":"yes"}},
		"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"","volumeName":"far-data","resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Bound"}}`)
	store, dir := writeBackup(t, []archive.Item{ns("far"), pv, pvc})

	var log logLines
	opts := options(openBackup(t, store, dir), &log)
	opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"far": "near"}
	res, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Failed).To(BeZero(), "log:\n%s", &log)

	live := getJSON(t, ctx, rVolumes, "", "far-data")
	g.Expect(mapOf(mapOf(live, "spec"), "claimRef")).To(And(HaveKeyWithValue("namespace", "near"), HaveKeyWithValue("name", "data")))
	g.Expect(str(getJSON(t, ctx, rClaims, "near", "data"), "spec", "volumeName")).To(Equal("far-data"))
	g.Eventually(func() string { return str(getJSON(t, ctx, rClaims, "near", "data"), "status", "phase") }).
		WithTimeout(time.Minute).Should(Equal("Bound"))
	g.Expect(str(getJSON(t, ctx, rVolumes, "", "far-data"), "spec", "claimRef", "uid")).
		To(Equal(str(getJSON(t, ctx, rClaims, "near", "data"), "metadata", "uid")))
	g.Expect(getJSON(t, ctx, rNamespaces, "", "far")).To(BeNil(), "the unmapped namespace was created")
}

// A backup of another cluster never creates its PersistentVolumes (they
// point at that cluster's disks): each is left out with a warning, and its
// claim drops volumeName, so that its (mapped) StorageClass provisions it.
func TestVolumeOfAnotherClusterIsNeverCreated(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	pv := item(rVolumes, "", "other-data", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"other-data"},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Delete","storageClassName":"premium-lrs",
		"hostPath":{"path":"/tmp/other"},"claimRef":{"kind":"PersistentVolumeClaim","namespace":"other","name":"data","uid":"old-claim-uid","apiVersion":"v1"}},
		"status":{"phase":"Bound"}}`)
	pvc := item(rClaims, "other", "data", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"other",
		"annotations":{"pv.kubernetes.io/bind-completed":"yes","pv.kubernetes.io/bound-by-controller":"yes","volume.kubernetes.io/selected-node":"node-a"}},
		"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"premium-lrs","volumeName":"other-data","resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Bound"}}`)
	logs := item(rClaims, "other", "logs", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"logs","namespace":"other",
		"annotations":{"volume.beta.kubernetes.io/storage-class":"standard"}},
		"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}`)
	store, dir := writeBackup(t, []archive.Item{ns("other"), pv, pvc, logs}) // taken on spoke-1

	var log logLines
	opts := options(openBackup(t, store, dir), &log)
	opts.Cluster = "spoke-2"
	opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"other": "moved"}
	opts.StorageClassMapping = backupv1alpha1.StorageClassMapping{"premium-lrs": "managed-csi", "standard": "local"}
	res, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Failed).To(BeZero(), "log:\n%s", &log)
	g.Expect(res.Excluded).To(BeEquivalentTo(1), "the volume")

	g.Expect(getJSON(t, ctx, rVolumes, "", "other-data")).To(BeNil(), "no PersistentVolume of another cluster is created")
	g.Expect(log.outcomes()).To(HaveKeyWithValue("persistentvolumes//other-data", LeftOut))
	g.Expect(log.about(archive.LevelWarning, rVolumes.ref("", "other-data"))).To(ConsistOf(ContainSubstring("taken on cluster spoke-1 and points at that cluster's storage")))

	data := getJSON(t, ctx, rClaims, "moved", "data")
	g.Expect(str(data, "spec", "volumeName")).To(BeEmpty(), "the claim gets a new volume")
	g.Expect(str(data, "spec", "storageClassName")).To(Equal("managed-csi"))
	g.Expect(mapOf(mapOf(data, "metadata"), "annotations")).NotTo(Or(
		HaveKey("pv.kubernetes.io/bind-completed"), HaveKey("pv.kubernetes.io/bound-by-controller"), HaveKey("volume.kubernetes.io/selected-node")))
	g.Expect(log.about(archive.LevelWarning, rClaims.ref("other", "data"))).To(ContainElement(ContainSubstring("without its volume other-data, which belongs to cluster spoke-1")))
	g.Expect(log.about(archive.LevelInfo, rClaims.ref("other", "data"))).To(ContainElement(ContainSubstring("with StorageClass managed-csi instead of premium-lrs")))
	g.Expect(str(getJSON(t, ctx, rClaims, "moved", "logs"), "metadata", "annotations", betaStorageClass)).To(Equal("local"))
}

// On the backup's own cluster, storageClassMappings renames the class of the
// volumes it creates as well as of their claims, so that they still match.
func TestStorageClassMappingOnTheSameCluster(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	pv := item(rVolumes, "", "same-data", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"same-data"},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain","storageClassName":"old-class",
		"hostPath":{"path":"/tmp/same"},"claimRef":{"kind":"PersistentVolumeClaim","namespace":"same","name":"data","apiVersion":"v1"}}}`)
	pvc := item(rClaims, "same", "data", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"same"},
		"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"old-class","volumeName":"same-data","resources":{"requests":{"storage":"1Gi"}}}}`)
	store, dir := writeBackup(t, []archive.Item{ns("same"), pv, pvc})

	var log logLines
	opts := options(openBackup(t, store, dir), &log)
	opts.StorageClassMapping = backupv1alpha1.StorageClassMapping{"old-class": "new-class"}
	res, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Failed).To(BeZero(), "log:\n%s", &log)
	g.Expect(str(getJSON(t, ctx, rVolumes, "", "same-data"), "spec", "storageClassName")).To(Equal("new-class"))
	claim := getJSON(t, ctx, rClaims, "same", "data")
	g.Expect(str(claim, "spec", "storageClassName")).To(Equal("new-class"))
	g.Expect(str(claim, "spec", "volumeName")).To(Equal("same-data"), "on its own cluster the claim keeps its volume")
}

// Skip leaves an existing object exactly as it is; Update applies the
// backed-up fields over it.
func TestExistingResourcePolicy(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store, dir := writeBackup(t, []archive.Item{ns("policy"), cm("policy", "settings", map[string]string{"mode": "backup"}), cm("policy", "fresh", map[string]string{"a": "b"})})
	postJSON(t, ctx, rNamespaces, "", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"policy"}}`)
	postJSON(t, ctx, rConfigMaps, "policy", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"mode":"live","extra":"x"}}`)

	for _, tc := range []struct {
		policy            backupv1alpha1.ExistingResourcePolicy
		mode              string
		restored, skipped int64
	}{
		{"", "live", 1, 2}, // Skip is the default: fresh is created, the namespace and settings exist
		{backupv1alpha1.ExistingResourceSkip, "live", 0, 3},
		{backupv1alpha1.ExistingResourceUpdate, "backup", 3, 0},
	} {
		var log logLines
		opts := options(openBackup(t, store, dir), &log)
		opts.ExistingResourcePolicy = tc.policy
		res, err := Run(ctx, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Failed).To(BeZero(), "log:\n%s", &log)
		g.Expect([]int64{res.Restored, res.Skipped}).To(Equal([]int64{tc.restored, tc.skipped}), "policy %q", tc.policy)
		live := getJSON(t, ctx, rConfigMaps, "policy", "settings")
		g.Expect(stringMap(live, "data")).To(Equal(map[string]string{"mode": tc.mode, "extra": "x"}), "policy %q", tc.policy)
		if tc.skipped > 0 {
			// A skipped object is a warning that names it.
			g.Expect(log.about(archive.LevelWarning, rConfigMaps.ref("policy", "settings"))).To(ConsistOf(
				"Skipped: ConfigMap policy/settings exists and is left as it is (existingResourcePolicy Skip)"))
			g.Expect(log.outcomes()).To(HaveKeyWithValue("configmaps/policy/settings", Existed))
			g.Expect(res.Warnings).To(BeNumerically(">=", tc.skipped))
		} else {
			g.Expect(log.outcomes()).To(HaveKeyWithValue("configmaps/policy/settings", Updated))
			g.Expect(res.Updated).To(Equal(tc.restored))
		}
	}
	// Update applied with our field manager.
	live := getJSON(t, ctx, rConfigMaps, "policy", "settings")
	var managers []string
	for _, f := range list(live, "metadata", "managedFields") {
		managers = append(managers, str(asMap(f), "manager")+"/"+str(asMap(f), "operation"))
	}
	g.Expect(managers).To(ContainElement("lifeboat/Apply"))
}

// An item the cluster refuses does not stop the restore: it is logged with
// its name, counted, and the rest is restored.
func TestItemErrorsAreLoggedAndCounted(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	bad := cm("partial", "bad", map[string]string{"not a valid key!": "x"})
	gadget := item(res{"example.org", "v1", "gadgets", "Gadget", true}, "partial", "g1",
		`{"apiVersion":"example.org/v1","kind":"Gadget","metadata":{"name":"g1","namespace":"partial"}}`)
	store, dir := writeBackup(t, []archive.Item{ns("partial"), cm("partial", "good", map[string]string{"a": "b"}), bad, gadget})

	var log logLines
	res, err := Run(ctx, options(openBackup(t, store, dir), &log))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Restored).To(BeEquivalentTo(2))
	g.Expect(res.Failed).To(BeEquivalentTo(2))
	g.Expect(res.Errors).To(BeEquivalentTo(2))
	g.Expect(log.about(archive.LevelError, bad.Ref())).To(ConsistOf(ContainSubstring("Invalid value")))
	g.Expect(log.about(archive.LevelError, gadget.Ref())).To(ConsistOf(ContainSubstring("does not serve gadgets.example.org/v1")))
	g.Expect(getJSON(t, ctx, rConfigMaps, "partial", "good")).NotTo(BeNil())
}

// A backup that is truncated, changed or written by a newer Lifeboat fails
// before the restore changes anything, even when its first items are intact.
func TestBrokenBackupChangesNothing(t *testing.T) {
	ctx := testCtx(t)
	items := []archive.Item{ns("broken")}
	for i := range 200 {
		items = append(items, cm("broken", fmt.Sprintf("cm-%d", i), map[string]string{"i": strings.Repeat(fmt.Sprint(i), 50)}))
	}
	for _, tc := range []struct {
		name   string
		damage func(g *WithT, root string)
		want   string
	}{
		{"truncated", func(g *WithT, root string) { truncate(g, root, archive.ResourcesFile, 0.9) }, "is truncated"},
		{"tampered", func(g *WithT, root string) { flipByte(g, root, archive.ResourcesFile, 0.95) }, "sha256"},
		{"tampered list", func(g *WithT, root string) { flipByte(g, root, archive.ResourceListFile, 0.95) }, archive.ResourceListFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			store, dir := writeBackup(t, items)
			r := openBackup(t, store, dir)
			tc.damage(g, storeRoot(store, dir))
			res, err := Run(ctx, options(r, &logLines{}))
			var re *ReadError
			g.Expect(err).To(BeAssignableToTypeOf(re))
			g.Expect(err).To(MatchError(archive.ErrCorrupt))
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
			g.Expect(res.Restored + res.Skipped + res.Failed).To(BeZero())
			g.Expect(getJSON(t, ctx, rNamespaces, "", "broken")).To(BeNil(), "the restore changed the cluster")
		})
	}
	t.Run("version bumped", func(t *testing.T) {
		g := NewWithT(t)
		store, dir := writeBackup(t, items)
		bumpVersion(g, storeRoot(store, dir))
		_, err := archive.Open(ctx, store, dir)
		g.Expect(err).To(MatchError(archive.ErrNewerFormat))
		g.Expect(err.Error()).To(ContainSubstring("newer Lifeboat"))
	})
}

// A self-service restore writes only into its own namespace, whatever the
// backup and the mapping say.
func TestSelfServiceWritesOnlyItsNamespace(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	items := []archive.Item{
		ns("team-a"), ns("team-b"),
		cm("team-a", "mine", map[string]string{"a": "1"}),
		cm("team-b", "theirs", map[string]string{"b": "1"}),
		item(rClusterRoles, "", "team-a-admin", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"team-a-admin"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}`),
		item(rVolumes, "", "team-a-pv", `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"team-a-pv"},"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/tmp/a"}}}`),
	}
	store, dir := writeBackup(t, items)
	postJSON(t, ctx, rNamespaces, "", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}`)

	var log logLines
	opts := options(openBackup(t, store, dir), &log)
	opts.OnlyNamespace = "team-a"
	opts.Selection = &backupv1alpha1.ResourceSelection{ClusterScopedResources: backupv1alpha1.ClusterScopedInclude}
	res, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Failed).To(BeZero(), "log:\n%s", &log)
	g.Expect(res.Restored).To(BeEquivalentTo(1))
	g.Expect(getJSON(t, ctx, rConfigMaps, "team-a", "mine")).NotTo(BeNil())
	g.Expect(getJSON(t, ctx, rNamespaces, "", "team-b")).To(BeNil())
	g.Expect(getJSON(t, ctx, rClusterRoles, "", "team-a-admin")).To(BeNil())
	g.Expect(getJSON(t, ctx, rVolumes, "", "team-a-pv")).To(BeNil())
	g.Expect(log.about(archive.LevelWarning, rConfigMaps.ref("team-b", "theirs"))).To(ConsistOf(ContainSubstring("may write only there")))
	g.Expect(log.about(archive.LevelWarning, rClusterRoles.ref("", "team-a-admin"))).To(ConsistOf(ContainSubstring("may not write cluster-scoped objects")))
	g.Expect(res.Warnings).To(BeEquivalentTo(4)) // team-b's Namespace and ConfigMap, the ClusterRole, the PV

	// Mapping another namespace away or into it changes nothing of that.
	var log2 logLines
	opts = options(openBackup(t, store, dir), &log2)
	opts.OnlyNamespace = "team-a"
	opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"team-a": "team-c"}
	res, err = Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Restored + res.Skipped).To(BeZero())
	g.Expect(getJSON(t, ctx, rNamespaces, "", "team-c")).To(BeNil())
	g.Expect(log2.about(archive.LevelWarning, rConfigMaps.ref("team-a", "mine"))).To(ConsistOf(ContainSubstring("would go to namespace team-c")))
}

// diff lists where two decoded JSON values differ.
func diff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		for k := range am {
			out = append(out, diff(path+"."+k, am[k], bm[k])...)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				out = append(out, diff(path+"."+k, nil, bm[k])...)
			}
		}
		return out
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: original %s, restored %s", path, mustJSON(a), mustJSON(b))}
}

// Auto, with namespaces named, takes the cluster-scoped objects that the
// selected objects need, and no others.
func TestAutoTakesWhatSelectedObjectsNeed(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	crd := func(plural string) archive.Item {
		return item(rCRDs, "", plural+".auto.example.com", fmt.Sprintf(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"%[1]s.auto.example.com"},
			"spec":{"group":"auto.example.com","scope":"Namespaced","names":{"plural":%[1]q,"kind":"K%[1]s","listKind":"K%[1]sList"},
			"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`, plural))
	}
	clusterRole := func(name string) archive.Item {
		return item(rClusterRoles, "", name, fmt.Sprintf(`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":%q},"rules":[]}`, name))
	}
	gizmo := item(res{"auto.example.com", "v1", "gizmos", "Kgizmos", true}, "auto", "g1", `{"apiVersion":"auto.example.com/v1","kind":"Kgizmos","metadata":{"name":"g1","namespace":"auto"},"spec":{"a":1}}`)
	binding := item(rRoleBindings, "auto", "b", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"b","namespace":"auto"},
		"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"auto-needed"},"subjects":[{"kind":"ServiceAccount","name":"default","namespace":"auto"}]}`)
	store, dir := writeBackup(t, []archive.Item{
		crd("gizmos"), crd("unused"), clusterRole("auto-needed"), clusterRole("auto-unused"),
		ns("auto"), ns("auto-other"), gizmo, binding, cm("auto-other", "c", nil),
	})

	var log logLines
	opts := options(openBackup(t, store, dir), &log)
	opts.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"auto"}}
	result, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(result.Failed).To(BeZero(), "log:\n%s", &log)
	g.Expect(getJSON(t, ctx, rCRDs, "", "gizmos.auto.example.com")).NotTo(BeNil())
	g.Expect(getJSON(t, ctx, res{"auto.example.com", "v1", "gizmos", "Kgizmos", true}, "auto", "g1")).NotTo(BeNil())
	g.Expect(getJSON(t, ctx, rClusterRoles, "", "auto-needed")).NotTo(BeNil())
	g.Expect(getJSON(t, ctx, rCRDs, "", "unused.auto.example.com")).To(BeNil())
	g.Expect(getJSON(t, ctx, rClusterRoles, "", "auto-unused")).To(BeNil())
	g.Expect(getJSON(t, ctx, rNamespaces, "", "auto-other")).To(BeNil())
	g.Expect(result.Restored).To(BeEquivalentTo(5))
	g.Expect(result.Excluded).To(BeEquivalentTo(4))
}

// Owner references follow their owners to the UIDs they get in this
// cluster; references to owners that are not restored are dropped, so the
// garbage collector keeps the object.
func TestOwnerReferencesFollowTheirOwners(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	dependent := item(rConfigMaps, "owners", "dependent", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dependent","namespace":"owners",
		"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"uid-owners-owner"},{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"uid-gone"}]}}`)
	orphan := item(rConfigMaps, "owners", "orphan", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"orphan","namespace":"owners",
		"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"uid-gone"}]}}`)
	// The dependents come first in the backup; the owner is still written first.
	store, dir := writeBackup(t, []archive.Item{ns("owners"), dependent, orphan, cm("owners", "owner", nil)})

	var log logLines
	result, err := Run(ctx, options(openBackup(t, store, dir), &log))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(result.Failed).To(BeZero(), "log:\n%s", &log)
	owner := getJSON(t, ctx, rConfigMaps, "owners", "owner")
	refs := list(getJSON(t, ctx, rConfigMaps, "owners", "dependent"), "metadata", "ownerReferences")
	g.Expect(refs).To(HaveLen(1))
	g.Expect(str(asMap(refs[0]), "uid")).To(Equal(str(owner, "metadata", "uid")))
	g.Expect(list(getJSON(t, ctx, rConfigMaps, "owners", "orphan"), "metadata", "ownerReferences")).To(BeEmpty())
	g.Expect(log.about(archive.LevelInfo, dependent.Ref())).To(ConsistOf(ContainSubstring("ConfigMap gone"), "Created"))
	// The garbage collector has nothing to collect.
	g.Consistently(func() map[string]any { return getJSON(t, ctx, rConfigMaps, "owners", "orphan") }).
		WithTimeout(3 * time.Second).ShouldNot(BeNil())
}
