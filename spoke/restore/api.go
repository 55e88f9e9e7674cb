package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// api writes objects as raw JSON: the spooled bytes go to the API server as
// they are, with no typed or unstructured round trip, and answers are read
// only when the restore needs something from them.
type api struct {
	rc           rest.Interface
	disc         discovery.DiscoveryInterface
	fieldManager string

	mu sync.Mutex
	// resources holds, per group/version, whether each resource it serves
	// is namespaced; an empty map for a group/version the cluster does not serve.
	resources map[string]map[string]bool
}

// Accept headers. A restore sends JSON, and asks for protobuf answers where
// it does not read them: encoding the answer is a large part of the API
// server's work for a create, and protobuf is several times cheaper to
// encode than JSON. Custom resources have no protobuf form; the server
// answers them in JSON.
const (
	acceptAny  = "application/vnd.kubernetes.protobuf,application/json"
	acceptJSON = "application/json"
)

// restClient makes the REST client a restore writes with; accept is the
// default Accept header.
func restClient(cfg *rest.Config, qps float32, burst int, accept string) (*rest.RESTClient, *rest.Config, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = qps, burst
	c.UserAgent = "lifeboat-restore"
	c.ContentConfig = rest.ContentConfig{
		ContentType:          "application/json",
		AcceptContentTypes:   accept,
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
	}
	rc, err := rest.UnversionedRESTClientFor(c)
	return rc, c, err
}

func newAPI(cfg *rest.Config, qps float32, burst int, fieldManager string) (*api, error) {
	rc, c, err := restClient(cfg, qps, burst, acceptAny)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	c.ContentConfig = rest.ContentConfig{}
	disc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return &api{rc: rc, disc: disc, fieldManager: fieldManager, resources: map[string]map[string]bool{}}, nil
}

// outcome is what a write did.
type outcome int

const (
	created outcome = iota
	updated
	existed
)

func groupVersion(ref archive.ItemRef) string {
	if ref.Group == "" {
		return ref.Version
	}
	return ref.Group + "/" + ref.Version
}

func collectionPath(ref archive.ItemRef, namespace string) string {
	p := "/apis/" + ref.Group + "/" + ref.Version
	if ref.Group == "" {
		p = "/api/" + ref.Version
	}
	if namespace != "" {
		p += "/namespaces/" + namespace
	}
	return p + "/" + ref.Resource
}

func objectPath(ref archive.ItemRef, namespace, name string) string {
	return collectionPath(ref, namespace) + "/" + name
}

// accept is the Accept header of a write whose answer the restore reads
// (as JSON) or not.
func accept(read bool) string {
	if read {
		return acceptJSON
	}
	return acceptAny
}

// create creates the object unless it exists; it returns the created
// object's JSON if read.
func (a *api) create(ctx context.Context, ref archive.ItemRef, namespace string, body []byte, read bool) (outcome, []byte, error) {
	raw, err := result(a.rc.Post().AbsPath(collectionPath(ref, namespace)).SetHeader("Accept", accept(read)).
		Param("fieldManager", a.fieldManager).Body(body).Do(ctx))
	if apierrors.IsAlreadyExists(err) {
		return existed, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return created, raw, nil
}

// apply server-side applies the object with force; it returns the object's
// JSON if read.
func (a *api) apply(ctx context.Context, ref archive.ItemRef, namespace, name string, body []byte, read bool) (outcome, []byte, error) {
	var code int
	res := a.rc.Patch(types.ApplyPatchType).AbsPath(objectPath(ref, namespace, name)).SetHeader("Accept", accept(read)).
		Param("fieldManager", a.fieldManager).Param("force", "true").Body(body).Do(ctx)
	raw, err := result(res.StatusCode(&code))
	if err != nil {
		return 0, nil, err
	}
	if code == http.StatusCreated {
		return created, raw, nil
	}
	return updated, raw, nil
}

func (a *api) get(ctx context.Context, ref archive.ItemRef, namespace, name string) ([]byte, error) {
	return result(a.rc.Get().AbsPath(objectPath(ref, namespace, name)).SetHeader("Accept", acceptJSON).Do(ctx))
}

// result returns the body of a response, or its error with the API
// server's message (Raw alone gives a generic one).
func result(res rest.Result) ([]byte, error) {
	if err := res.Error(); err != nil {
		return nil, err
	}
	return res.Raw()
}

func (a *api) jsonPatch(ctx context.Context, ref archive.ItemRef, namespace, name string, patch []byte) error {
	return a.rc.Patch(types.JSONPatchType).AbsPath(objectPath(ref, namespace, name)).
		Param("fieldManager", a.fieldManager).Body(patch).Do(ctx).Error()
}

// served checks that the cluster serves the item's resource, with the same
// scope as in the backup.
func (a *api) served(ref archive.ItemRef) error {
	gv := groupVersion(ref)
	a.mu.Lock()
	res, ok := a.resources[gv]
	a.mu.Unlock()
	if !ok {
		var err error
		if res, err = a.discover(gv); err != nil {
			return err
		}
		a.mu.Lock()
		a.resources[gv] = res
		a.mu.Unlock()
	}
	namespaced, ok := res[ref.Resource]
	switch {
	case !ok && strings.Contains(ref.Group, ".") && !strings.HasSuffix(ref.Group, ".k8s.io"):
		return fmt.Errorf("this cluster does not serve %s.%s/%s: its CustomResourceDefinition is neither in the cluster nor restored",
			ref.Resource, ref.Group, ref.Version)
	case !ok:
		return fmt.Errorf("this cluster does not serve %s in API version %s", ref.Resource, gv)
	case namespaced != (ref.Namespace != ""):
		return fmt.Errorf("%s in %s is namespaced in one cluster and cluster-scoped in the other", ref.Resource, gv)
	}
	return nil
}

// discover asks the API server which resources it serves in gv.
func (a *api) discover(gv string) (map[string]bool, error) {
	res := map[string]bool{}
	list, err := a.disc.ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discovering the resources of %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if !strings.Contains(r.Name, "/") {
			res[r.Name] = r.Namespaced
		}
	}
	return res, nil
}

// forgetDiscovery drops what served learnt, after CRDs changed.
func (a *api) forgetDiscovery() {
	a.mu.Lock()
	a.resources = map[string]map[string]bool{}
	a.mu.Unlock()
}

// uidOf reads metadata.uid from an object's JSON.
func uidOf(raw []byte) string {
	var o struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return ""
	}
	return o.Metadata.UID
}
