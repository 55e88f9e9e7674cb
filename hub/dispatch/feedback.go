package dispatch

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Value is one feedback value. Type says which of the other fields holds it.
type Value struct {
	Type   workv1.ValueType
	String string
	Int    int64
	Bool   bool
	// Raw is set for workv1.JsonRaw (only with OCM's RawFeedbackJsonString gate).
	Raw json.RawMessage
}

// Status is what a ManifestWork reports about its spoke object.
type Status struct {
	// Generation is the hub object's generation the values belong to.
	Generation int64
	// ObjectGeneration is the spoke object's metadata.generation when the
	// values were read; compare it with a fed-back .status.observedGeneration
	// to know whether the spoke's status describes its current spec.
	ObjectGeneration int64
	// Values are the caller's feedback fields by name. A field whose path
	// found nothing is absent.
	Values map[string]Value
	// Applied and Available are the work's conditions as the agent set them,
	// nil when it has not yet.
	Applied   *metav1.Condition
	Available *metav1.Condition
}

// Feedback reads mw's status feedback for the hub object's generation. It
// returns ok=false, and the caller must keep the hub status it has, when:
//   - mw is nil or being deleted (its deletionTimestamp is set);
//   - mw's AnnotationGeneration is not generation (the work was made for an
//     older or newer hub spec);
//   - the feedback holds no AnnotationGeneration read from the spoke object,
//     or one that is not generation: the agent has not fed back anything yet,
//     or what it fed back was read from the spoke object before it applied
//     this generation.
//
// The agent reads every value of one manifest from one copy of the spoke
// object, so with ok=true all Values were read after this generation was
// applied. Whether the spoke's own controller has acted on it yet is for the
// caller to judge from ObjectGeneration and the fields it fed back.
func Feedback(mw *workv1.ManifestWork, generation int64) (Status, bool) {
	if mw == nil || mw.DeletionTimestamp != nil {
		return Status{}, false
	}
	if mw.Annotations[AnnotationGeneration] != strconv.FormatInt(generation, 10) {
		return Status{}, false
	}
	s := Status{
		Generation: generation,
		Values:     map[string]Value{},
		Applied:    meta.FindStatusCondition(mw.Status.Conditions, workv1.WorkApplied),
		Available:  meta.FindStatusCondition(mw.Status.Conditions, workv1.WorkAvailable),
	}
	fed := false
	for _, m := range mw.Status.ResourceStatus.Manifests {
		for _, fv := range m.StatusFeedbacks.Values {
			v, ok := value(fv.Value)
			if !ok {
				continue
			}
			switch fv.Name {
			case FeedbackGeneration:
				fed = v.Type == workv1.String && v.String == strconv.FormatInt(generation, 10)
			case FeedbackObjectGeneration:
				s.ObjectGeneration = v.Int
			default:
				s.Values[fv.Name] = v
			}
		}
	}
	if !fed {
		return Status{}, false
	}
	return s, true
}

func value(f workv1.FieldValue) (Value, bool) {
	v := Value{Type: f.Type}
	switch {
	case f.Type == workv1.String && f.String != nil:
		v.String = *f.String
	case f.Type == workv1.Integer && f.Integer != nil:
		v.Int = *f.Integer
	case f.Type == workv1.Boolean && f.Boolean != nil:
		v.Bool = *f.Boolean
	case f.Type == workv1.JsonRaw && f.JsonRaw != nil:
		v.Raw = json.RawMessage(*f.JsonRaw)
	default:
		return Value{}, false
	}
	return v, true
}

// Shorten cuts a message that a cluster fed back to at most max characters,
// ending it with "…" when it cut, so that hub status lists of many clusters'
// messages stay within etcd's object size.
func Shorten(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}
