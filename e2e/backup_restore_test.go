package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// shopCRD is a custom resource definition the sample application owns.
var shopCRD = &apiextensionsv1.CustomResourceDefinition{
	ObjectMeta: metav1.ObjectMeta{Name: "carts.shop.example.com"},
	Spec: apiextensionsv1.CustomResourceDefinitionSpec{
		Group: "shop.example.com",
		Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "carts", Singular: "cart", Kind: "Cart", ListKind: "CartList"},
		Scope: apiextensionsv1.NamespaceScoped,
		Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
			Name: "v1", Served: true, Storage: true,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"owner": {Type: "string"}, "items": {Type: "integer"},
					}},
				},
			}},
		}},
	},
}

// sampleApp is a namespace with every kind of object an application has.
func sampleApp(ns string) []client.Object {
	labels := map[string]string{"app": "shop"}
	podSpec := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "shop",
			Containers: []corev1.Container{{
				Name: "web", Image: "registry.example.com/shop:1.4.2",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-config"}}}},
			}},
		},
	}
	pvName := "pv-" + ns
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": "shop"}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "shop-reader", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "shop-reader", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "shop-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shop", Namespace: ns}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "shop-view", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shop", Namespace: ns}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config", Namespace: ns, Labels: labels}, Data: map[string]string{"CURRENCY": "EUR", "FEATURES": "cart,checkout"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-db", Namespace: ns}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("s3cr3t!")}},
		&corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: pvName},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              "manual",
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/" + ns}},
				ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "shop-data"},
			},
		},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-data", Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr.To("manual"),
				VolumeName:       pvName,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: labels},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop-web", Namespace: ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podSpec}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "shop-db", Namespace: ns},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), ServiceName: "shop", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop-db"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "shop-db"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "registry.example.com/postgres:16"}}}}}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}},
		cart(ns, "cart-1", "alice", 3),
		cart(ns, "cart-2", "bob", 1),
	}
}

func cart(ns, name, owner string, items int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "shop.example.com/v1", "kind": "Cart",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"owner": owner, "items": items},
	}}
	return u
}

// deploySample creates the sample application on c and waits until its PVC is bound.
func deploySample(g Gomega, ctx context.Context, c client.Client, ns string) {
	crd := shopCRD.DeepCopy()
	g.Expect(client.IgnoreAlreadyExists(c.Create(ctx, crd))).To(Succeed())
	g.Expect(fleet.WaitCRDsEstablished(ctx, c, crd.Name)).To(Succeed())
	for _, o := range sampleApp(ns) {
		g.Expect(c.Create(ctx, o)).To(Succeed(), "creating %T %s", o, o.GetName())
	}
	g.Eventually(func() corev1.PersistentVolumeClaimPhase {
		pvc := &corev1.PersistentVolumeClaim{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-data"}, pvc)).To(Succeed())
		return pvc.Status.Phase
	}, time.Minute, 250*time.Millisecond).Should(Equal(corev1.ClaimBound), "the controller-manager binds the PVC")
}

// userFields is what a user owns of an object: labels, annotations that are
// not the system's, and everything but metadata and status.
func userFields(g Gomega, o client.Object) map[string]any {
	raw, err := json.Marshal(o)
	g.Expect(err).NotTo(HaveOccurred())
	m := map[string]any{}
	g.Expect(json.Unmarshal(raw, &m)).To(Succeed())
	meta, _ := m["metadata"].(map[string]any)
	out := map[string]any{"labels": meta["labels"]}
	if ann, ok := meta["annotations"].(map[string]any); ok {
		kept := map[string]any{}
		for k, v := range ann {
			if !strings.Contains(k, "kubernetes.io/") && k != "kubectl.kubernetes.io/last-applied-configuration" {
				kept[k] = v
			}
		}
		if len(kept) > 0 {
			out["annotations"] = kept
		}
	}
	for k, v := range m {
		if k != "metadata" && k != "status" && k != "apiVersion" && k != "kind" {
			out[k] = v
		}
	}
	// What the cluster assigns, never the user.
	if spec, ok := out["spec"].(map[string]any); ok {
		for _, f := range []string{"clusterIP", "clusterIPs", "volumeName", "claimRef"} {
			delete(spec, f)
		}
	}
	return out
}

// snapshot reads the sample app's objects (not the PV) from c in ns.
func snapshot(g Gomega, ctx context.Context, c client.Client, ns string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range sampleApp(ns) {
		switch o.(type) {
		case *corev1.Namespace, *corev1.PersistentVolume:
			continue
		}
		key := fmt.Sprintf("%T/%s", o, o.GetName())
		if u, ok := o.(*unstructured.Unstructured); ok {
			key = u.GetKind() + "/" + u.GetName()
		}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.GetName()}, o)
		g.Expect(err).NotTo(HaveOccurred(), "reading %s in %s", key, ns)
		out[key] = userFields(g, o)
	}
	return out
}

func appBackup(name, target, ns string) *backupv1alpha1.ApplicationBackup {
	return &backupv1alpha1.ApplicationBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: targets.SystemNamespace},
		Spec: backupv1alpha1.ApplicationBackupSpec{
			Target:    backupv1alpha1.ObjectName(target),
			Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(ns)}},
		},
	}
}

func appRestore(name, target, cluster, backupID string, mapping map[string]string) *backupv1alpha1.ApplicationRestore {
	r := &backupv1alpha1.ApplicationRestore{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: targets.SystemNamespace},
		Spec: backupv1alpha1.ApplicationRestoreSpec{
			Target: backupv1alpha1.ObjectName(target),
			Source: backupv1alpha1.BackupSource{Cluster: backupv1alpha1.ClusterName(cluster), BackupID: backupv1alpha1.BackupID(backupID)},
		},
	}
	if mapping != nil {
		r.Spec.NamespaceMapping = backupv1alpha1.NamespaceMapping{}
		for k, v := range mapping {
			r.Spec.NamespaceMapping[k] = backupv1alpha1.NamespaceName(v)
		}
	}
	return r
}

// sampleDataSkipped is what a backup of the sample application in ns says
// while its spoke has no volume data mover: the bound claim whose data it
// did not take. The backup ends PartialSuccess.
func sampleDataSkipped(ns string) string {
	return fmt.Sprintf("volume data of 1 PersistentVolumeClaim not backed up (this spoke has no volume data mover): %s/shop-data", ns)
}

// readyMessage is the message of the Ready condition.
func readyMessage(conditions []metav1.Condition) string {
	if c := meta.FindStatusCondition(conditions, backupv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

func backupPhase(b *backupv1alpha1.ApplicationBackup) string   { return string(b.Status.Phase) }
func restorePhase(r *backupv1alpha1.ApplicationRestore) string { return string(r.Status.Phase) }

// A namespace backed up on spoke-1 is deleted (really gone), restored on
// spoke-1 equal to the original, and restored on spoke-2 into another namespace.
func TestBackupDeleteRestoreAndMigrate(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	spoke1, spoke2 := testFleet.Spokes[0], testFleet.Spokes[1]
	ns := "shop-" + rand.String(4)
	validTarget(g, ctx, "shop-backups", "shop-backups")
	deploySample(g, ctx, spoke1.Client, ns)
	original := snapshot(g, ctx, spoke1.Client, ns)

	b := appBackup("shop", "shop-backups", ns)
	g.Expect(spoke1.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke1.Client, b, backupPhase, 2*time.Minute)).To(Equal("PartialSuccess"), "conditions: %+v", b.Status.Conditions)
	g.Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring(sampleDataSkipped(ns)))
	g.Expect(b.Status.BackupID).NotTo(BeEmpty())
	g.Expect(b.Status.Stage).To(Equal(backupv1alpha1.StageFinal))
	g.Expect(b.Status.Progress.ItemsDone).To(BeNumerically(">=", len(original)))
	t.Logf("backup %s: %d items, %d bytes", b.Status.BackupID, b.Status.Progress.ItemsDone, b.Status.Progress.BytesDone)

	// Delete the namespace and wait until the controller-manager has really removed it.
	g.Expect(spoke1.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(spoke1.Client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}))
	}, 2*time.Minute, 500*time.Millisecond).Should(BeTrue(), "namespace %s is gone", ns)

	r := appRestore("shop-back", "shop-backups", spoke1.Name, string(b.Status.BackupID), nil)
	g.Expect(spoke1.Client.Create(ctx, r)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke1.Client, r, restorePhase, 2*time.Minute)).To(Equal("Success"), "conditions: %+v", r.Status.Conditions)
	// Every item has a result, counted in the status and kept in the bucket beside the backup.
	g.Expect(r.Status.Items).NotTo(BeNil())
	it := r.Status.Items
	g.Expect(it.Created + it.Updated + it.Existed + it.LeftOut + it.Failed).To(Equal(r.Status.Progress.ItemsTotal))
	g.Expect(it.Created).To(BeNumerically(">=", len(original)))
	g.Expect(r.Status.Log).To(Equal(fmt.Sprintf("lifeboat/v1/backups/%s/%s/restores/%s/%s/%s-%s.jsonl.gz",
		spoke1.Name, b.Status.BackupID, spoke1.Name, r.Namespace, r.Name, r.UID)))
	restored := snapshot(g, ctx, spoke1.Client, ns)
	for key, want := range original {
		g.Expect(restored[key]).To(Equal(want), "%s restored on spoke-1 equals the original", key)
	}

	// Migration: the same backup into another namespace on spoke-2.
	mapped := ns + "-copy"
	m := appRestore("shop-migrate", "shop-backups", spoke1.Name, string(b.Status.BackupID), map[string]string{ns: mapped})
	g.Expect(spoke2.Client.Create(ctx, m)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke2.Client, m, restorePhase, 2*time.Minute)).To(Equal("Success"), "conditions: %+v", m.Status.Conditions)
	migrated := snapshot(g, ctx, spoke2.Client, mapped)
	for key, want := range original {
		g.Expect(migrated[key]).To(Equal(remapSubjects(want, ns, mapped)), "%s restored on spoke-2 in %s", key, mapped)
	}
	err := spoke2.Client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is written to the unmapped namespace on spoke-2")
	err = spoke2.Client.Get(ctx, client.ObjectKey{Name: "pv-" + ns}, &corev1.PersistentVolume{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "spoke-1's PersistentVolume, which points at spoke-1's disk, is not created on spoke-2")
}

// remapSubjects is want with RoleBinding subjects' namespace from -> to.
func remapSubjects(want map[string]any, from, to string) map[string]any {
	raw, _ := json.Marshal(want)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	if subjects, ok := out["subjects"].([]any); ok {
		for _, s := range subjects {
			if sm, ok := s.(map[string]any); ok && sm["namespace"] == from {
				sm["namespace"] = to
			}
		}
	}
	return out
}
