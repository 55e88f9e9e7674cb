// Package dispatch turns hub objects into OCM ManifestWork and reads their
// status feedback back for the hub's status.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the server-side apply field manager of the hub's ManifestWork.
const FieldOwner = "lifeboat-hub"

// AnnotationGeneration holds the hub object's metadata.generation, on the
// ManifestWork and on the spoke object inside it.
const AnnotationGeneration = "fleet.lifeboat.dev/generation"

// Feedback names Work adds for itself; callers may not use them.
const (
	// FeedbackGeneration reads AnnotationGeneration back from the spoke object.
	FeedbackGeneration = "lifeboat.generation"
	// FeedbackObjectGeneration reads the spoke object's metadata.generation.
	FeedbackObjectGeneration = "lifeboat.objectGeneration"
)

// HubObject is the hub object a ManifestWork is made for.
type HubObject struct {
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
	Generation int64
}

// Field is one status feedback value: Name is how Feedback returns it, Path a
// JSONPath from the spoke object's root, e.g. ".status.phase". The path must
// point to a scalar (string, integer or boolean); OCM returns nothing for
// structures, lists and maps without a feature gate.
type Field struct {
	Name string
	Path string
}

type options struct {
	orphan   bool
	resource string
}

// Option changes what Work builds.
type Option func(*options)

// Orphan leaves the spoke object in place when the ManifestWork is deleted.
// Without it the work agent deletes the spoke object with the work.
func Orphan() Option { return func(o *options) { o.orphan = true } }

// WithResource names the spoke object's resource (plural, e.g. "backuptargets")
// when guessing it from the kind would be wrong.
func WithResource(resource string) Option { return func(o *options) { o.resource = resource } }

// Work is the ManifestWork that puts obj on cluster for owner: named by Name,
// in the cluster's namespace, labelled by Labels, with owner's generation in
// AnnotationGeneration on the work and on the spoke object, applied by the
// work agent with server-side apply and reporting feedback back. obj needs
// its TypeMeta; it is not modified.
func Work(cluster string, owner HubObject, obj client.Object, feedback []Field, opts ...Option) (*workv1.ManifestWork, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("dispatch %s/%s: the spoke object has no apiVersion and kind", obj.GetNamespace(), obj.GetName())
	}
	if cluster == "" || owner.Kind == "" || owner.Name == "" {
		return nil, errors.New("dispatch: cluster, owner kind and owner name are required")
	}
	generation := strconv.FormatInt(owner.Generation, 10)

	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("dispatch %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	spoke := &unstructured.Unstructured{Object: u}
	// Only what the hub means to set goes into the apply: no server-owned
	// metadata, no status.
	delete(spoke.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink"} {
		unstructured.RemoveNestedField(spoke.Object, "metadata", f)
	}
	ann := spoke.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationGeneration] = generation
	spoke.SetAnnotations(ann)
	raw, err := json.Marshal(spoke.Object)
	if err != nil {
		return nil, err
	}

	paths := []workv1.JsonPath{
		{Name: FeedbackGeneration, Path: ".metadata.annotations." + strings.ReplaceAll(AnnotationGeneration, ".", `\.`)},
		{Name: FeedbackObjectGeneration, Path: ".metadata.generation"},
	}
	seen := map[string]bool{FeedbackGeneration: true, FeedbackObjectGeneration: true}
	for _, f := range feedback {
		if f.Name == "" || seen[f.Name] {
			return nil, fmt.Errorf("dispatch: feedback name %q is empty, repeated or reserved", f.Name)
		}
		if !strings.HasPrefix(f.Path, ".") {
			return nil, fmt.Errorf("dispatch: feedback %q: path %q does not start at the object root", f.Name, f.Path)
		}
		seen[f.Name] = true
		paths = append(paths, workv1.JsonPath{Name: f.Name, Path: f.Path})
	}

	resource := o.resource
	if resource == "" {
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		resource = plural.Resource
	}
	deleteOption := &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeForeground}
	if o.orphan {
		deleteOption.PropagationPolicy = workv1.DeletePropagationPolicyTypeOrphan
	}
	return &workv1.ManifestWork{
		TypeMeta: metav1.TypeMeta{APIVersion: workv1.GroupVersion.String(), Kind: "ManifestWork"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        Name(owner.Kind, owner.Namespace, owner.Name),
			Namespace:   cluster,
			Labels:      Labels(owner),
			Annotations: map[string]string{AnnotationGeneration: generation},
		},
		Spec: workv1.ManifestWorkSpec{
			Workload:     workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}},
			DeleteOption: deleteOption,
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{
					Group:     gvk.Group,
					Resource:  resource,
					Namespace: obj.GetNamespace(),
					Name:      obj.GetName(),
				},
				UpdateStrategy: &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply},
				FeedbackRules:  []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: paths}},
			}},
		},
	}, nil
}

// Create creates mw, which the hub does not hold yet, as FieldOwner, and
// fills mw with what the hub stored; when it exists after all it applies it
// (Apply). A create costs the API server less than a server-side apply,
// and sending a location or a schedule's run to thousands of clusters waits
// for the API server (docs/benchmarks.md). Later changes are applied as
// usual, taking over the fields the create set; an entry of a keyed list
// (e.g. a feedback path) that a later apply leaves out stays, so a work's
// feedback paths and manifest configs must not shrink over its life (the
// manifests themselves are one atomic list).
func Create(ctx context.Context, c client.Client, mw *workv1.ManifestWork) error {
	obj := mw.DeepCopy()
	obj.Status = workv1.ManifestWorkStatus{}
	err := c.Create(ctx, obj, client.FieldOwner(FieldOwner))
	if apierrors.IsAlreadyExists(err) {
		return Apply(ctx, c, mw)
	}
	if err != nil {
		return fmt.Errorf("create ManifestWork %s/%s: %w", mw.Namespace, mw.Name, err)
	}
	*mw = *obj
	return nil
}

// Apply server-side applies mw as FieldOwner, taking over conflicting fields,
// and fills mw with what the hub stored.
func Apply(ctx context.Context, c client.Client, mw *workv1.ManifestWork) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mw)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: u}
	obj.SetAPIVersion(workv1.GroupVersion.String())
	obj.SetKind("ManifestWork")
	delete(obj.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ManifestWork %s/%s: %w", mw.Namespace, mw.Name, err)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, mw)
}
