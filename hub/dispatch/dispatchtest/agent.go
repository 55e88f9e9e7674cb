// Package dispatchtest stands in for OCM's work agent in hub reconciler
// tests: it writes on the hub what the agent reports for a work that
// dispatch made, so the hub's own reading of feedback is what is tested.
package dispatchtest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// Values turns values (string or int64 each) into feedback values.
func Values(values map[string]any) []workv1.FeedbackValue {
	var out []workv1.FeedbackValue
	for name, v := range values {
		switch v := v.(type) {
		case string:
			out = append(out, workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.String, String: &v}})
		case int64:
			out = append(out, workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.Integer, Integer: &v}})
		}
	}
	return out
}

// Report writes, as the work agent would, the status of the work at key on
// the hub: Applied, and for its one spoke object the feedback values plus
// dispatch's reserved entries, the hub generation the spoke object carries
// and the spoke object's own generation. It retries until timeout when the
// work is missing or changed meanwhile.
func Report(g Gomega, c client.Client, key client.ObjectKey, hubGeneration, objectGeneration int64, values []workv1.FeedbackValue, timeout time.Duration) {
	ctx := context.Background()
	gen := strconv.FormatInt(hubGeneration, 10)
	values = append(append([]workv1.FeedbackValue{}, values...),
		workv1.FeedbackValue{Name: dispatch.FeedbackGeneration, Value: workv1.FieldValue{Type: workv1.String, String: &gen}},
		workv1.FeedbackValue{Name: dispatch.FeedbackObjectGeneration, Value: workv1.FieldValue{Type: workv1.Integer, Integer: &objectGeneration}})
	g.Eventually(func(g Gomega) {
		mw := &workv1.ManifestWork{}
		g.Expect(c.Get(ctx, key, mw)).To(Succeed())
		g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
		obj := &unstructured.Unstructured{}
		g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, &obj.Object)).To(Succeed())
		gvk := obj.GroupVersionKind()
		now := metav1.Now()
		mw.Status.Conditions = []metav1.Condition{{Type: workv1.WorkApplied, Status: metav1.ConditionTrue, Reason: "AppliedManifestWorkComplete",
			Message: "applied", LastTransitionTime: now, ObservedGeneration: mw.Generation}}
		mw.Status.ResourceStatus.Manifests = []workv1.ManifestCondition{{
			ResourceMeta: workv1.ManifestResourceMeta{Ordinal: 0, Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
				Resource: strings.ToLower(gvk.Kind) + "s", Namespace: obj.GetNamespace(), Name: obj.GetName()},
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: values},
			Conditions: []metav1.Condition{{Type: workv1.ManifestApplied, Status: metav1.ConditionTrue, Reason: "AppliedManifestComplete",
				Message: "applied", LastTransitionTime: now}},
		}}
		g.Expect(c.Status().Update(ctx, mw)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}
