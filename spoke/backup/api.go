package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// apiClient reads objects as raw JSON. A list page is split into its items'
// bytes without decoding the objects into maps (the dynamic client decodes a
// page twice into map[string]any); each item is then checked for the few
// fields the backup needs and goes into the archive as it came.
type apiClient struct {
	rest rest.Interface
	disc discovery.DiscoveryInterface
}

// Client settings: a backup lists many pages quickly; 5 QPS (client-go's
// default) would make 10,000 objects take minutes.
const (
	minQPS   = 200
	minBurst = 400
)

func newAPIClient(cfg *rest.Config) (*apiClient, error) {
	c := rest.CopyConfig(cfg)
	if c.QPS < minQPS {
		c.QPS = minQPS
	}
	if c.Burst < minBurst {
		c.Burst = minBurst
	}
	c.DisableCompression = true
	// Deprecation warnings (v1 Endpoints) say nothing a backup's user can act on.
	c.WarningHandler = rest.NoWarnings{}
	disc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, err
	}
	c.APIPath = ""
	c.GroupVersion = nil
	c.ContentType = "application/json"
	c.AcceptContentTypes = "application/json"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion() // decodes metav1.Status errors
	if c.UserAgent == "" {
		c.UserAgent = "lifeboat-spoke-backup"
	}
	rc, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &apiClient{rest: rc, disc: disc}, nil
}

// resource is a served resource in its preferred version.
type resource struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

// resourceKey is a resource without its version.
type resourceKey struct{ group, resource string }

func (r resource) key() resourceKey { return resourceKey{r.gvr.Group, r.gvr.Resource} }

func (r resource) apiVersion() string { return r.gvr.GroupVersion().String() }

// String names the resource as a selection does: configmaps, deployments.apps.
func (k resourceKey) String() string {
	if k.group == "" {
		return k.resource
	}
	return k.resource + "." + k.group
}

// path is the URL path of the resource in namespace ns ("" for all
// namespaces, or a cluster-scoped resource), or of one object when name is set.
func (r resource) path(ns, name string) string {
	p := "/apis/" + r.gvr.Group + "/" + r.gvr.Version
	if r.gvr.Group == "" {
		p = "/api/" + r.gvr.Version
	}
	if ns != "" && r.namespaced {
		p += "/namespaces/" + ns
	}
	p += "/" + r.gvr.Resource
	if name != "" {
		p += "/" + name
	}
	return p
}

// page is one list response; the items stay raw.
type page struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

type listOptions struct {
	limit         int64
	labelSelector string
	cont          string
}

// list reads one page, retrying what a retry can fix.
func (c *apiClient) list(ctx context.Context, r resource, ns string, o listOptions) (*page, error) {
	var body []byte
	err := onTransient(ctx, func() error {
		req := c.rest.Get().AbsPath(r.path(ns, "")).Param("limit", strconv.FormatInt(o.limit, 10))
		if o.labelSelector != "" {
			req = req.Param("labelSelector", o.labelSelector)
		}
		if o.cont != "" {
			req = req.Param("continue", o.cont)
		}
		var err error
		body, err = req.Do(ctx).Raw()
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &page{}
	if err := json.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("the API server's list of %s is not valid JSON: %w", r.key(), err)
	}
	return p, nil
}

// get reads one object; it carries its apiVersion and kind.
func (c *apiClient) get(ctx context.Context, r resource, ns, name string) ([]byte, error) {
	var body []byte
	err := onTransient(ctx, func() error {
		var err error
		body, err = c.rest.Get().AbsPath(r.path(ns, name)).Do(ctx).Raw()
		return err
	})
	return body, err
}

// retryBackoff: about 7 s over 4 attempts, enough for an API server restart
// or a burst of 429s, short enough that a broken resource does not hold up
// the backup.
var retryBackoff = wait.Backoff{Steps: 4, Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2}

func onTransient(ctx context.Context, fn func() error) error {
	return retry.OnError(retryBackoff, func(err error) bool { return ctx.Err() == nil && transient(err) }, fn)
}

func transient(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || errors.Is(err, http.ErrHandlerTimeout)
}

// expiredContinue returns the continue token the API server offers when a
// list's continue token has expired (etcd compacted the revision the list
// started at): with it, the list goes on from where it was, at the current
// revision.
func expiredContinue(err error) string {
	var status apierrors.APIStatus
	if !apierrors.IsResourceExpired(err) || !errors.As(err, &status) {
		return ""
	}
	return status.Status().ListMeta.Continue
}

// head is what the backup reads of every object.
type head struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// labeled is the head of objects that exclusions look at the labels of.
type labeled struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
}

// withTypeMeta puts apiVersion and kind in front of obj's other fields; the
// API server leaves them out of the items of built-in lists.
func withTypeMeta(obj []byte, apiVersion, kind string) []byte {
	i := bytes.IndexByte(obj, '{')
	rest := bytes.TrimLeft(obj[i+1:], " \t\r\n")
	b := make([]byte, 0, len(obj)+len(apiVersion)+len(kind)+28)
	b = append(b, `{"apiVersion":`...)
	b = strconv.AppendQuote(b, apiVersion)
	b = append(b, `,"kind":`...)
	b = strconv.AppendQuote(b, kind)
	if len(rest) > 0 && rest[0] != '}' {
		b = append(b, ',')
	}
	return append(b, rest...)
}

// discover returns every resource the backup may take, in the preferred
// version of its group. Groups that cannot be discovered are logged as errors
// (their objects are missing from the backup); a cluster that cannot be
// discovered at all fails the backup.
func (e *engine) discover(ctx context.Context) ([]resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lists, err := discovery.ServerPreferredResources(e.api.disc)
	var failed *discovery.ErrGroupDiscoveryFailed
	switch {
	case errors.As(err, &failed):
		for gv, gerr := range failed.Groups {
			e.logError(nil, fmt.Sprintf("could not discover API group version %s: %v; its resources are not in this backup", gv, gerr))
		}
	case err != nil:
		return nil, fmt.Errorf("discovering the API server's resources: %w", err)
	}
	var out []resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			r := resource{gvr: gv.WithResource(ar.Name), kind: ar.Kind, namespaced: ar.Namespaced}
			if backupable(r, ar) {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("discovering the API server's resources: it serves none that can be backed up")
	}
	return out, nil
}

// backupable: a top-level resource that a backup can read in full and a
// restore can create, and that is not excluded.
func backupable(r resource, ar metav1.APIResource) bool {
	if len(ar.Name) == 0 || bytes.ContainsRune([]byte(ar.Name), '/') {
		return false // a subresource
	}
	verbs := map[string]bool{}
	for _, v := range ar.Verbs {
		verbs[v] = true
	}
	for _, v := range requiredVerbs {
		if !verbs[v] {
			return false
		}
	}
	return excluded(r.key()) == ""
}
