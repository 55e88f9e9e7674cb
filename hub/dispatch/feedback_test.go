package dispatch_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// reported is mw as the agent reports it: work annotation for workGen, the
// spoke object read at fedGen ("" for none), and the values.
func reported(workGen, fedGen string, values ...workv1.FeedbackValue) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{dispatch.AnnotationGeneration: workGen}}}
	if fedGen != "" {
		values = append(values, workv1.FeedbackValue{Name: "lifeboat.generation", Value: workv1.FieldValue{Type: workv1.String, String: ptr.To(fedGen)}})
	}
	mw.Status.ResourceStatus.Manifests = []workv1.ManifestCondition{{StatusFeedbacks: workv1.StatusFeedbackResult{Values: values}}}
	mw.Status.Conditions = []metav1.Condition{{Type: workv1.WorkApplied, Status: metav1.ConditionTrue}}
	return mw
}

func TestFeedbackRule(t *testing.T) {
	phase := workv1.FeedbackValue{Name: "phase", Value: workv1.FieldValue{Type: workv1.String, String: ptr.To("Valid")}}
	deleting := reported("3", "3", phase)
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name string
		mw   *workv1.ManifestWork
		ok   bool
	}{
		{"current", reported("3", "3", phase), true},
		{"nil work", nil, false},
		{"no feedback yet", reported("3", ""), false},
		{"values without the generation", reported("3", "", phase), false},
		{"feedback read before the agent applied generation 3", reported("3", "2", phase), false},
		{"work still for generation 2", reported("2", "2", phase), false},
		{"work already for generation 4", reported("4", "4", phase), false},
		{"work being deleted", deleting, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s, ok := dispatch.Feedback(tt.mw, 3)
			g.Expect(ok).To(Equal(tt.ok))
			if ok {
				g.Expect(s.Generation).To(BeEquivalentTo(3))
				g.Expect(s.Values).To(Equal(map[string]dispatch.Value{"phase": {Type: workv1.String, String: "Valid"}}))
				g.Expect(s.Applied).NotTo(BeNil())
				g.Expect(s.Available).To(BeNil())
			} else {
				g.Expect(s).To(BeZero())
			}
		})
	}
}

func TestFeedbackValueTypes(t *testing.T) {
	g := NewWithT(t)
	mw := reported("1", "1",
		workv1.FeedbackValue{Name: "count", Value: workv1.FieldValue{Type: workv1.Integer, Integer: ptr.To[int64](42)}},
		workv1.FeedbackValue{Name: "done", Value: workv1.FieldValue{Type: workv1.Boolean, Boolean: ptr.To(true)}},
		workv1.FeedbackValue{Name: "raw", Value: workv1.FieldValue{Type: workv1.JsonRaw, JsonRaw: ptr.To(`{"a":1}`)}},
		workv1.FeedbackValue{Name: "objgen", Value: workv1.FieldValue{Type: workv1.String}}, // type without value: dropped
		workv1.FeedbackValue{Name: "lifeboat.objectGeneration", Value: workv1.FieldValue{Type: workv1.Integer, Integer: ptr.To[int64](7)}},
	)
	s, ok := dispatch.Feedback(mw, 1)
	g.Expect(ok).To(BeTrue())
	g.Expect(s.ObjectGeneration).To(BeEquivalentTo(7))
	g.Expect(s.Values).To(HaveLen(3))
	g.Expect(s.Values["count"].Int).To(BeEquivalentTo(42))
	g.Expect(s.Values["done"].Bool).To(BeTrue())
	g.Expect(string(s.Values["raw"].Raw)).To(Equal(`{"a":1}`))
}

func TestWorkRefuses(t *testing.T) {
	owner := dispatch.HubObject{Kind: "Backup", Namespace: "a", Name: "b", Generation: 1}
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "d"}}
	tests := []struct {
		name     string
		obj      *corev1.ConfigMap
		feedback []dispatch.Field
	}{
		{"no TypeMeta", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, nil},
		{"reserved feedback name", cm, []dispatch.Field{{Name: "lifeboat.generation", Path: ".data.x"}}},
		{"repeated feedback name", cm, []dispatch.Field{{Name: "x", Path: ".data.x"}, {Name: "x", Path: ".data.y"}}},
		{"path not from the root", cm, []dispatch.Field{{Name: "x", Path: "data.x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dispatch.Work("spoke-1", owner, tt.obj, tt.feedback)
			NewWithT(t).Expect(err).To(HaveOccurred())
		})
	}
}
