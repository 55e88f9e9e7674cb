// Package crds installs the spoke's CustomResourceDefinitions on its own
// cluster as the spoke starts. No per-cluster copy of them travels through
// the hub: the add-on's ManifestWork holds only the spoke's namespace,
// Deployment and RBAC, and the CRDs are upgraded with the spoke's image.
package crds

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/lifeboat-dev/lifeboat/charts"
)

// FieldManager owns every field of the CRDs the spoke applies: a CRD that
// Helm or an administrator installed before is taken over, so that it
// always matches the spoke's image.
const FieldManager = "lifeboat-spoke"

// The spoke may read and apply its own CRDs and no others: a server-side
// apply that creates a CRD is authorized as create with the CRD's name, so
// RBAC restricts it by name too (a plain create, whose name RBAC cannot see,
// is refused). It may not delete any.
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;create;patch,resourceNames=applicationbackups.backup.lifeboat.dev;applicationrestores.backup.lifeboat.dev;backupdeletions.backup.lifeboat.dev;backupsyncs.backup.lifeboat.dev;backuptargets.backup.lifeboat.dev;prebackuppods.backup.lifeboat.dev;runlogs.backup.lifeboat.dev

// Install applies every CRD of the spoke chart with server-side apply and
// waits until the API server serves them all, at most timeout, reading them
// again after a failed read. It returns their names.
func Install(ctx context.Context, cfg *rest.Config, timeout time.Duration) ([]string, error) {
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	docs, err := charts.SpokeCRDs()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(docs))
	for _, doc := range docs {
		body, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := json.Unmarshal(body, &crd); err != nil {
			return nil, err
		}
		_, err = cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
		if err != nil {
			return nil, fmt.Errorf("applying CustomResourceDefinition %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}

	var waiting string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			crd, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				// A failed read (the API server restarting, a dropped
				// connection) is asked again until timeout.
				waiting = fmt.Sprintf("%s (last read: %v)", name, err)
				return false, nil
			}
			if !Established(crd) {
				waiting = name
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for CustomResourceDefinition %s to be established: %w", waiting, err)
	}
	return names, nil
}

// Established reports whether the API server serves crd's current spec.
func Established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	ok := 0
	for _, c := range crd.Status.Conditions {
		if (c.Type == apiextensionsv1.Established || c.Type == apiextensionsv1.NamesAccepted) && c.Status == apiextensionsv1.ConditionTrue {
			ok++
		}
	}
	return ok == 2
}
