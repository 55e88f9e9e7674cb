package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// write writes the spooled objects class by class.
func (r *run) write(ctx context.Context) error {
	for class := range numClasses {
		for _, owned := range []bool{false, true} {
			if err := r.writeSpooled(ctx, class, owned); err != nil {
				return err
			}
		}
		switch class {
		case classClaims:
			r.fillVolumes(ctx)
		case classCRDs:
			r.waitForCRDs(ctx)
		case classNamespaces:
			r.ensureNamespaces(ctx)
		}
	}
	return ctx.Err()
}

// writeSpooled writes one spool file with Options.Workers in parallel.
func (r *run) writeSpooled(ctx context.Context, class int, owned bool) error {
	sr, err := r.spool.open(class, owned)
	if err != nil || sr == nil {
		return err
	}
	defer sr.close()
	g, gctx := errgroup.WithContext(ctx)
	entries := make(chan *entry, 2*r.opts.Workers)
	g.Go(func() error {
		defer close(entries)
		for {
			e, err := sr.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			select {
			case entries <- e:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	})
	for range r.opts.Workers {
		g.Go(func() error {
			for e := range entries {
				if err := gctx.Err(); err != nil {
					return err
				}
				r.writeEntry(gctx, e)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// writeEntry writes one object and counts and logs what happened.
func (r *run) writeEntry(ctx context.Context, e *entry) {
	if e.Need != "" && !r.needs[e.Need] {
		r.exclude(e.Ref, "cluster-scoped objects that no selected object needs")
		return
	}
	if err := r.api.served(e.Ref); err != nil {
		r.fail(e.Ref, "Not restored: %v", err)
		return
	}
	if e.Ref.Group == "" && e.Ref.Resource == "persistentvolumes" {
		r.writeVolume(ctx, e)
		return
	}
	body := e.Object
	var err error
	if e.Ref.Group == "" && e.Ref.Resource == "persistentvolumeclaims" {
		if body, err = r.prepareClaim(ctx, e); err != nil {
			r.fail(e.Ref, "Not restored%s: %v", r.as(e), err)
			return
		}
	}
	if e.Owned {
		if body, err = r.rewriteOwners(e, body); err != nil {
			r.fail(e.Ref, "Not restored%s: %v", r.as(e), err)
			return
		}
	}

	var out outcome
	var raw []byte
	isOwner := e.UID != "" && r.ownerUIDs[e.UID]
	if r.opts.ExistingResourcePolicy == backupv1alpha1.ExistingResourceUpdate {
		out, raw, err = r.api.apply(ctx, e.Ref, e.Namespace, e.Name, body, isOwner)
	} else {
		out, raw, err = r.api.create(ctx, e.Ref, e.Namespace, body, isOwner)
		if err == nil && out == existed && e.Merge {
			out, raw, err = r.api.apply(ctx, e.Ref, e.Namespace, e.Name, body, isOwner)
		}
	}
	if err != nil {
		r.fail(e.Ref, "Not restored%s: %v", r.as(e), err)
		return
	}
	switch out {
	case created:
		r.done(e, Created, archive.LevelInfo, "Created")
		r.toFill(e)
	case updated:
		r.done(e, Updated, archive.LevelInfo, "Updated: it existed and the backed-up fields were applied over it")
	case existed:
		r.done(e, Existed, archive.LevelWarning, "Skipped: %s %s exists and is left as it is (existingResourcePolicy Skip)", e.Ref.Kind, e.target())
	}
	if isOwner {
		r.rememberUID(ctx, e, raw)
	}
	if e.Ref.Group == "apiextensions.k8s.io" && e.Ref.Resource == "customresourcedefinitions" {
		r.mu.Lock()
		r.crds = append(r.crds, e.Name)
		r.mu.Unlock()
	}
}

// as says where an object went, when that is not where it was.
func (r *run) as(e *entry) string {
	if e.Namespace != e.Ref.Namespace || e.Name != e.Ref.Name {
		return " as " + e.target()
	}
	return ""
}

// rememberUID records the cluster's UID of an object that others name as
// their owner; raw is the API server's answer, nil if the object existed.
func (r *run) rememberUID(ctx context.Context, e *entry, raw []byte) {
	if raw == nil {
		var err error
		if raw, err = r.api.get(ctx, e.Ref, e.Namespace, e.Name); err != nil {
			return // its dependents lose the reference, and say so
		}
	}
	if uid := uidOf(raw); uid != "" {
		r.mu.Lock()
		r.newUIDs[e.UID] = uid
		r.mu.Unlock()
	}
}

// rewriteOwners points the object's owner references to its owners' UIDs in
// this cluster and drops those to owners that this restore did not write or
// find.
func (r *run) rewriteOwners(e *entry, body []byte) ([]byte, error) {
	obj, err := decode(body)
	if err != nil {
		return nil, err
	}
	meta := mapOf(obj, "metadata")
	var kept []any
	var dropped []string
	for _, o := range list(obj, "metadata", "ownerReferences") {
		ref := asMap(o)
		r.mu.Lock()
		uid, ok := r.newUIDs[str(ref, "uid")]
		r.mu.Unlock()
		if ok {
			ref["uid"] = uid
			kept = append(kept, ref)
		} else {
			dropped = append(dropped, fmt.Sprintf("%s %s", str(ref, "kind"), str(ref, "name")))
		}
	}
	if len(dropped) > 0 {
		r.log(archive.LevelInfo, &e.Ref, "Restored without its owner references to %v, which this restore did not write", dropped)
	}
	if len(kept) == 0 {
		delete(meta, "ownerReferences")
	} else {
		meta["ownerReferences"] = kept
	}
	return json.Marshal(obj)
}

var (
	namespacesRef = archive.ItemRef{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	crdsRef       = archive.ItemRef{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}
)

// ensureNamespaces creates, bare, the namespaces that receive objects but
// whose Namespace object was not restored, and reports those being deleted.
func (r *run) ensureNamespaces(ctx context.Context) {
	if r.opts.OnlyNamespace != "" {
		return
	}
	names := make([]string, 0, len(r.namespaces))
	for ns := range r.namespaces {
		names = append(names, ns)
	}
	slices.Sort(names)
	for _, ns := range names {
		body := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)
		out, _, err := r.api.create(ctx, namespacesRef, "", body, false)
		switch {
		case err != nil:
			r.log(archive.LevelError, nil, "Could not create namespace %s, so its objects will fail: %v", ns, err)
		case out == created:
			r.log(archive.LevelInfo, nil, "Created namespace %s without labels or annotations: the restore holds no Namespace object for it", ns)
		default:
			raw, err := r.api.get(ctx, namespacesRef, "", ns)
			if err == nil && str(mustDecode(raw), "metadata", "deletionTimestamp") != "" {
				r.log(archive.LevelError, nil, "Namespace %s is being deleted, so its objects will fail: restore again once it is gone", ns)
			}
		}
	}
}

func mustDecode(raw []byte) map[string]any {
	obj, _ := decode(raw)
	return obj
}

// waitForCRDs waits until every CRD written is Established and its resource
// served in every served version, so that custom resources can be written.
func (r *run) waitForCRDs(ctx context.Context) {
	r.mu.Lock()
	names := slices.Clone(r.crds)
	r.mu.Unlock()
	defer r.api.forgetDiscovery()
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.CRDTimeout)
	defer cancel()
	for _, name := range names {
		var last error
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			last = r.crdServed(ctx, name)
			return last == nil, nil
		})
		if err != nil {
			if last == nil {
				last = err
			}
			ref := crdsRef
			ref.Name = name
			r.log(archive.LevelError, &ref, "CustomResourceDefinition %s was not served within %s (%v): its custom resources will fail", name, r.opts.CRDTimeout, last)
		}
	}
}

// crdServed returns nil once the CRD is Established and discovery lists its
// resource in each served version.
func (r *run) crdServed(ctx context.Context, name string) error {
	raw, err := r.api.get(ctx, crdsRef, "", name)
	if err != nil {
		return err
	}
	crd, err := decode(raw)
	if err != nil {
		return err
	}
	established := false
	for _, c := range list(crd, "status", "conditions") {
		if cond := asMap(c); str(cond, "type") == "Established" && str(cond, "status") == "True" {
			established = true
		}
	}
	if !established {
		return errors.New("not Established yet")
	}
	group, plural := str(crd, "spec", "group"), str(crd, "spec", "names", "plural")
	for _, v := range list(crd, "spec", "versions") {
		ver := asMap(v)
		if ver["served"] != true {
			continue
		}
		res, err := r.api.discover(group + "/" + str(ver, "name"))
		if err != nil {
			return err
		}
		if _, ok := res[plural]; !ok {
			return fmt.Errorf("%s.%s/%s not in discovery yet", plural, group, str(ver, "name"))
		}
	}
	return nil
}

// isNotFound is apierrors.IsNotFound, for the volume code.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
