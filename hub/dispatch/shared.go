package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SpokeName is the name that hub object namespace/name's spoke object gets:
// "<namespace>-<name>-<hash>", DNS-1123, at most 63 characters. The hash of
// namespace and name is always there, so that team-a/x and team/a-x never
// share a spoke object (and one tenant never overwrites another's).
func SpokeName(namespace, name string) string {
	return withHash(namespace+"-"+name, namespace+"/"+name, validation.DNS1123LabelMaxLength)
}

// AnnotationSpecHash on a ManifestWork is SpecHash of what the hub last sent,
// so that an unchanged work is not applied again on every feedback event.
const AnnotationSpecHash = "fleet.lifeboat.dev/spec-hash"

// SpecHash hashes what the hub sends in mw: labels, annotations and spec.
func SpecHash(mw *workv1.ManifestWork) (string, error) {
	raw, err := json.Marshal(struct {
		Labels      map[string]string
		Annotations map[string]string
		Spec        workv1.ManifestWorkSpec
	}{mw.Labels, mw.Annotations, mw.Spec})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:16], nil
}

// Unchanged stamps mw with its SpecHash and reports whether current, the work
// the hub holds (nil when there is none), already holds what mw would send
// and is not being deleted: then there is nothing to apply.
func Unchanged(mw, current *workv1.ManifestWork) (bool, error) {
	hash, err := SpecHash(mw)
	if err != nil {
		return false, err
	}
	if mw.Annotations == nil {
		mw.Annotations = map[string]string{}
	}
	mw.Annotations[AnnotationSpecHash] = hash
	return current != nil && current.DeletionTimestamp.IsZero() && current.Annotations[AnnotationSpecHash] == hash, nil
}

// ApplyChanged applies mw unless the hub's work already holds the same (see
// Unchanged), and creates it when the hub holds none (Create); either way mw
// ends up as the hub holds it. It reports whether it wrote.
func ApplyChanged(ctx context.Context, c client.Client, mw *workv1.ManifestWork) (bool, error) {
	cur := &workv1.ManifestWork{}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(mw), cur); {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return false, err
	}
	same, err := Unchanged(mw, cur)
	if err != nil {
		return false, err
	}
	if same {
		*mw = *cur
		return false, nil
	}
	if cur == nil {
		return true, Create(ctx, c, mw)
	}
	return true, Apply(ctx, c, mw)
}
