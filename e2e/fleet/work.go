package fleet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var plainJSON = json.NewSerializerWithOptions(json.DefaultMetaFactory, nil, nil, json.SerializerOptions{})

// ConfigMapWork is a ManifestWork for cluster holding one ConfigMap
// (default/name with data), with JSONPaths feedback of every data key.
func ConfigMapWork(cluster, name string, data map[string]string) (*workv1.ManifestWork, error) {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Data:       data,
	}
	raw, err := runtime.Encode(plainJSON, cm)
	if err != nil {
		return nil, err
	}
	var paths []workv1.JsonPath
	for k := range data {
		paths = append(paths, workv1.JsonPath{Name: k, Path: ".data." + k})
	}
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster},
		Spec: workv1.ManifestWorkSpec{
			Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}},
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: name, Namespace: "default"},
				FeedbackRules:      []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: paths}},
				UpdateStrategy:     &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply},
			}},
		},
	}, nil
}

// FeedbackValue returns the string feedback value called name in mw's status.
func FeedbackValue(mw *workv1.ManifestWork, name string) (string, bool) {
	for _, m := range mw.Status.ResourceStatus.Manifests {
		for _, v := range m.StatusFeedbacks.Values {
			if v.Name == name && v.Value.String != nil {
				return *v.Value.String, true
			}
		}
	}
	return "", false
}

// ProbeWork sends a ConfigMap to spoke through a ManifestWork, waits for the
// value to come back as feedback, deletes the work and waits until the spoke
// object is gone. It returns the value that came back.
func ProbeWork(ctx context.Context, hub *ControlPlane, spoke *Spoke) (string, error) {
	name := "lifeboat-probe-" + rand.String(5)
	want := "hello from the hub " + rand.String(5)
	mw, err := ConfigMapWork(spoke.Name, name, map[string]string{"greeting": want})
	if err != nil {
		return "", err
	}
	if err := hub.Client.Create(ctx, mw); err != nil {
		return "", err
	}
	var got string
	// A cluster accepted just now: its work agent's informer retries its
	// forbidden list with a back-off of up to a minute, and an agent that
	// waited over 10 minutes for acceptance exited and is started again
	// (Spoke.WorkAgent).
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(mw), mw); err != nil {
			return false, nil
		}
		got, _ = FeedbackValue(mw, "greeting")
		return got == want, nil
	})
	if err != nil {
		return "", fmt.Errorf("no feedback from %s's work agent: %w", spoke.Name, err)
	}
	if err := hub.Client.Delete(ctx, mw); err != nil {
		return "", err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := spoke.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return "", fmt.Errorf("%s kept the ConfigMap after its ManifestWork was deleted: %w", spoke.Name, err)
	}
	return got, nil
}
