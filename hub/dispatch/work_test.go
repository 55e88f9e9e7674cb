package dispatch_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

const wait = time.Minute

func configMap(name, x string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Data:       map[string]string{"x": x},
	}
}

func owner(kind string, generation int64) dispatch.HubObject {
	return dispatch.HubObject{Kind: kind, Namespace: "team-a", Name: "obj-" + rand.String(6), UID: types.UID(uuid.NewString()), Generation: generation}
}

// TestConfigMapRoundTrip dispatches a ConfigMap to the spoke, reads its data
// back as feedback, changes it, and deletes it, through the real work agent.
func TestConfigMapRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	hub, spoke := f.Hub.Client, f.Spokes[0]
	o := owner("BackupLocation", 1)
	name := "dispatch-" + rand.String(6)
	feedback := []dispatch.Field{{Name: "x", Path: ".data.x"}}

	mw, err := dispatch.Work(spoke.Name, o, configMap(name, "one"), feedback)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dispatch.Apply(ctx, hub, mw)).To(Succeed())
	g.Expect(mw.UID).NotTo(BeEmpty(), "Apply fills in what the hub stored")
	g.Expect(mw.Name).To(Equal(dispatch.Name(o.Kind, o.Namespace, o.Name)))
	g.Expect(mw.Namespace).To(Equal(spoke.Name))
	g.Expect(mw.Labels).To(Equal(dispatch.Labels(o)))
	g.Expect(mw.Annotations).To(HaveKeyWithValue(dispatch.AnnotationGeneration, "1"))

	cm := &corev1.ConfigMap{}
	g.Eventually(func(g Gomega) {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, cm)).To(Succeed())
		g.Expect(cm.Data).To(HaveKeyWithValue("x", "one"))
	}, wait, 200*time.Millisecond).Should(Succeed())
	g.Expect(cm.Annotations).To(HaveKeyWithValue(dispatch.AnnotationGeneration, "1"))

	s := eventuallyFeedback(g, ctx, mw, 1)
	g.Expect(s.Values).To(Equal(map[string]dispatch.Value{"x": {Type: workv1.String, String: "one"}}))
	g.Expect(s.Applied).NotTo(BeNil())
	g.Expect(s.Applied.Status).To(Equal(metav1.ConditionTrue))
	_, ok := dispatch.Feedback(mw, 2)
	g.Expect(ok).To(BeFalse(), "the work is still for generation 1")

	// Generation 2 changes x. Until the agent has fed back what it read after
	// applying generation 2, Feedback must refuse; it must never pass "one" as
	// generation 2.
	o.Generation = 2
	mw2, err := dispatch.Work(spoke.Name, o, configMap(name, "two"), feedback)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dispatch.Apply(ctx, hub, mw2)).To(Succeed())
	g.Expect(mw2.Name).To(Equal(mw.Name))
	g.Expect(mw2.Generation).To(BeNumerically(">", mw.Generation))
	refused := 0
	g.Eventually(func(g Gomega) {
		got := &workv1.ManifestWork{}
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mw2), got)).To(Succeed())
		s, ok := dispatch.Feedback(got, 2)
		if !ok {
			refused++
		} else if s.Values["x"].String != "two" {
			t.Errorf("Feedback passed %+v as generation 2", s.Values)
		}
		g.Expect(ok).To(BeTrue())
		_, old := dispatch.Feedback(got, 1)
		g.Expect(old).To(BeFalse(), "feedback for generation 1 after generation 2 was sent")
	}, wait, 50*time.Millisecond).Should(Succeed())
	t.Logf("Feedback refused %d reads of the work before generation 2 came back", refused)
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("x", "two"))
	g.Expect(cm.Annotations).To(HaveKeyWithValue(dispatch.AnnotationGeneration, "2"))

	// Deleting the work deletes the spoke object; meanwhile Feedback refuses.
	g.Expect(hub.Delete(ctx, mw2)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := spoke.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "err = %v", err)
	}, wait, 200*time.Millisecond).Should(Succeed())
	eventuallyGone(g, ctx, mw2)
}

// TestBackupTargetApply dispatches a spoke BackupTarget, changes it, feeds
// its status back (written here as the spoke manager would) and orphans it.
func TestBackupTargetApply(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	hub, spoke := f.Hub.Client, f.Spokes[0]
	o := owner("BackupLocation", 1)
	name := "dispatch-" + rand.String(6)
	target := func(container string) *backupv1alpha1.BackupTarget {
		return &backupv1alpha1.BackupTarget{
			TypeMeta:   metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupTarget"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboattest", Container: container},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: fleet.TenantID},
			}},
		}
	}
	feedback := []dispatch.Field{
		{Name: "phase", Path: ".status.phase"},
		{Name: "reason", Path: ".status.reason"},
		{Name: "observedGeneration", Path: ".status.observedGeneration"},
	}

	mw, err := dispatch.Work(spoke.Name, o, target("backups"), feedback)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mw.Spec.ManifestConfigs[0].ResourceIdentifier).To(Equal(workv1.ResourceIdentifier{Group: backupv1alpha1.GroupVersion.Group, Resource: "backuptargets", Name: name}))
	g.Expect(mw.Spec.DeleteOption.PropagationPolicy).To(Equal(workv1.DeletePropagationPolicyTypeForeground))
	g.Expect(dispatch.Apply(ctx, hub, mw)).To(Succeed())

	bt := &backupv1alpha1.BackupTarget{}
	g.Eventually(func(g Gomega) {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: name}, bt)).To(Succeed())
		g.Expect(bt.Spec.Azure.Container).To(Equal("backups"))
	}, wait, 200*time.Millisecond).Should(Succeed())
	s := eventuallyFeedback(g, ctx, mw, 1)
	g.Expect(s.Values).To(BeEmpty(), "no spoke manager has written a status")
	g.Expect(s.ObjectGeneration).To(Equal(bt.Generation))

	// Generation 2 asks for a change the spoke refuses (the container is
	// immutable): the work reports the failure, and Feedback keeps refusing
	// generation 2 because nothing read back was applied at generation 2.
	o.Generation = 2
	mw, err = dispatch.Work(spoke.Name, o, target("elsewhere"), feedback)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dispatch.Apply(ctx, hub, mw)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &workv1.ManifestWork{}
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mw), got)).To(Succeed())
		applied := meta.FindStatusCondition(got.Status.Conditions, workv1.WorkApplied)
		g.Expect(applied).NotTo(BeNil())
		g.Expect(applied.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(applied.Status).To(Equal(metav1.ConditionFalse))
		_, ok := dispatch.Feedback(got, 2)
		g.Expect(ok).To(BeFalse())
		g.Expect(got.Status.ResourceStatus.Manifests).NotTo(BeEmpty(), "the agent did feed back")
	}, wait, 200*time.Millisecond).Should(Succeed())

	// Generation 3 changes what may change.
	o.Generation = 3
	mw, err = dispatch.Work(spoke.Name, o, withInterval(target("backups"), 5*time.Minute), feedback)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dispatch.Apply(ctx, hub, mw)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: name}, bt)).To(Succeed())
		g.Expect(bt.Spec.ValidationInterval).To(Equal(&metav1.Duration{Duration: 5 * time.Minute}))
	}, wait, 200*time.Millisecond).Should(Succeed())

	// Stand in for the spoke manager.
	bt.Status.Phase, bt.Status.Reason, bt.Status.ObservedGeneration = backupv1alpha1.TargetValid, "ValidationSucceeded", bt.Generation
	g.Expect(spoke.Client.Status().Update(ctx, bt)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &workv1.ManifestWork{}
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mw), got)).To(Succeed())
		s, ok := dispatch.Feedback(got, 3)
		g.Expect(ok).To(BeTrue())
		g.Expect(s.Values).To(Equal(map[string]dispatch.Value{
			"phase":              {Type: workv1.String, String: "Valid"},
			"reason":             {Type: workv1.String, String: "ValidationSucceeded"},
			"observedGeneration": {Type: workv1.Integer, Int: bt.Generation},
		}))
		g.Expect(s.ObjectGeneration).To(Equal(bt.Generation))
	}, wait, 200*time.Millisecond).Should(Succeed())

	// Orphan: the spoke object outlives its work.
	mw, err = dispatch.Work(spoke.Name, o, withInterval(target("backups"), 5*time.Minute), feedback, dispatch.Orphan())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dispatch.Apply(ctx, hub, mw)).To(Succeed())
	g.Expect(mw.Spec.DeleteOption.PropagationPolicy).To(Equal(workv1.DeletePropagationPolicyTypeOrphan))
	g.Eventually(func(g Gomega) {
		got := &workv1.ManifestWork{}
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(mw), got)).To(Succeed())
		applied := meta.FindStatusCondition(got.Status.Conditions, workv1.WorkApplied)
		g.Expect(applied).NotTo(BeNil())
		g.Expect(applied.ObservedGeneration).To(Equal(got.Generation), "the agent has seen the orphan option")
	}, wait, 200*time.Millisecond).Should(Succeed())
	g.Expect(hub.Delete(ctx, mw)).To(Succeed())
	eventuallyGone(g, ctx, mw)
	g.Consistently(func(g Gomega) {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: name}, bt)).To(Succeed())
		g.Expect(bt.DeletionTimestamp).To(BeNil())
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())
	g.Expect(spoke.Client.Delete(ctx, bt)).To(Succeed())
}

// TestManifestIsPlain checks what the agent is asked to apply: the object
// and the generation annotation, no server-owned fields, no status.
func TestManifestIsPlain(t *testing.T) {
	g := NewWithT(t)
	cm := configMap("c", "1")
	cm.ResourceVersion, cm.UID = "42", "u"
	mw, err := dispatch.Work("spoke-1", owner("Backup", 5), cm, nil)
	g.Expect(err).NotTo(HaveOccurred())
	var got map[string]any
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, &got)).To(Succeed())
	g.Expect(got).To(Equal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "c", "namespace": "default", "annotations": map[string]any{dispatch.AnnotationGeneration: "5"}},
		"data":     map[string]any{"x": "1"},
	}))
	g.Expect(cm.Annotations).To(BeNil(), "the caller's object is not modified")
}

func eventuallyFeedback(g Gomega, ctx context.Context, mw *workv1.ManifestWork, generation int64) dispatch.Status {
	var s dispatch.Status
	g.Eventually(func(g Gomega) {
		got := &workv1.ManifestWork{}
		g.Expect(f.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mw), got)).To(Succeed())
		var ok bool
		s, ok = dispatch.Feedback(got, generation)
		g.Expect(ok).To(BeTrue(), "status: %+v", got.Status)
		*mw = *got
	}, wait, 200*time.Millisecond).Should(Succeed())
	return s
}

func eventuallyGone(g Gomega, ctx context.Context, mw *workv1.ManifestWork) {
	g.Eventually(func(g Gomega) {
		err := f.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mw), &workv1.ManifestWork{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "err = %v", err)
	}, wait, 200*time.Millisecond).Should(Succeed())
}

func withInterval(bt *backupv1alpha1.BackupTarget, d time.Duration) *backupv1alpha1.BackupTarget {
	bt.Spec.ValidationInterval = &metav1.Duration{Duration: d}
	return bt
}
