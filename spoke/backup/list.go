package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// list reads every page of t and hands the objects taken to the writer.
// Errors are logged: the rest of the backup goes on.
func (e *engine) list(ctx context.Context, t task) {
	o := listOptions{limit: e.opts.PageSize, labelSelector: e.sel.labels}
	for {
		p, err := e.api.list(ctx, t.res, t.namespace, o)
		if err != nil {
			switch next := expiredContinue(err); {
			case ctx.Err() != nil:
			case next != "" && o.cont != "":
				e.logWarning(nil, fmt.Sprintf("listing %s took longer than the API server keeps a consistent list; the rest of the list shows objects as they are now", t))
				o.cont = next
				continue
			case apierrors.IsNotFound(err):
				e.logWarning(nil, fmt.Sprintf("%s is no longer served; none of its objects is in this backup", t))
			default:
				e.logError(nil, fmt.Sprintf("could not list %s: %v; its objects are not in this backup", t, err))
			}
			return
		}
		if !e.send(ctx, e.items(t, p.Items)) {
			return
		}
		if p.Metadata.Continue == "" {
			return
		}
		o.cont = p.Metadata.Continue
	}
}

func (t task) String() string {
	if t.namespace == "" {
		return t.res.key().String()
	}
	return t.res.key().String() + " in namespace " + t.namespace
}

// items turns one page into archive items: the objects the selection keeps,
// with apiVersion and kind, minus those a controller regenerates.
func (e *engine) items(t task, raws []json.RawMessage) []archive.Item {
	k := t.res.key()
	items := make([]archive.Item, 0, len(raws))
	for _, raw := range raws {
		var h head
		if err := json.Unmarshal(raw, &h); err != nil {
			e.logError(nil, fmt.Sprintf("the API server returned an object of %s that is not valid JSON: %v", t, err))
			continue
		}
		if !e.sel.keeps(t, &h) || regenerated(k, raw) {
			continue
		}
		obj := []byte(raw)
		if h.APIVersion == "" && h.Kind == "" {
			obj = withTypeMeta(raw, t.res.apiVersion(), t.res.kind)
		}
		e.noteDependencies(k, raw)
		items = append(items, archive.Item{
			Group: t.res.gvr.Group, Version: t.res.gvr.Version, Resource: t.res.gvr.Resource, Kind: t.res.kind,
			Namespace: h.Metadata.Namespace, Name: h.Metadata.Name, Object: obj,
		})
	}
	if len(items) > 0 {
		e.mu.Lock()
		e.listed[k] += int64(len(items))
		e.mu.Unlock()
	}
	return items
}

// namespaces reads the namespaces the selection names, keeping their
// Namespace objects for Auto, and returns those that exist.
func (e *engine) namespaces(ctx context.Context, resources []resource) ([]string, error) {
	if !e.sel.named {
		return nil, nil
	}
	nsRes, ok := find(resources, namespacesKey)
	if !ok {
		return nil, fmt.Errorf("the API server does not serve namespaces")
	}
	var existing []string
	for _, ns := range e.sel.namespaces {
		raw, err := e.api.get(ctx, nsRes, "", ns)
		switch {
		case apierrors.IsNotFound(err):
			e.logWarning(nil, fmt.Sprintf("namespace %s does not exist; nothing of it is in this backup", ns))
			continue
		case err != nil:
			return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
		existing = append(existing, ns)
		if it, err := e.item(nsRes, raw); err == nil {
			e.nsObjects = append(e.nsObjects, it)
		}
	}
	return existing, nil
}

// dependencies are the cluster-scoped objects that the namespaced objects
// taken refer to, by name.
type dependencies struct {
	pvs, storageClasses, clusterRoles map[string]bool
}

func newDependencies() dependencies {
	return dependencies{pvs: map[string]bool{}, storageClasses: map[string]bool{}, clusterRoles: map[string]bool{}}
}

// noteDependencies records what an object of resource k refers to, when Auto
// will take it.
func (e *engine) noteDependencies(k resourceKey, raw []byte) {
	if e.sel.policy != backupv1alpha1.ClusterScopedAuto || e.sel.selfService != "" {
		return
	}
	switch k {
	case pvcsKey:
		var pvc struct {
			Spec struct {
				VolumeName       string  `json:"volumeName"`
				StorageClassName *string `json:"storageClassName"`
			} `json:"spec"`
		}
		if json.Unmarshal(raw, &pvc) != nil {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if n := pvc.Spec.VolumeName; n != "" {
			e.deps.pvs[n] = true
		}
		if n := pvc.Spec.StorageClassName; n != nil && *n != "" {
			e.deps.storageClasses[*n] = true
		}
	case roleBindingsKey:
		var rb struct {
			RoleRef struct {
				APIGroup string `json:"apiGroup"`
				Kind     string `json:"kind"`
				Name     string `json:"name"`
			} `json:"roleRef"`
		}
		if json.Unmarshal(raw, &rb) != nil {
			return
		}
		if rb.RoleRef.Kind == "ClusterRole" && rb.RoleRef.APIGroup == clusterRolesKey.group {
			e.mu.Lock()
			e.deps.clusterRoles[rb.RoleRef.Name] = true
			e.mu.Unlock()
		}
	}
}

// addDependencies takes the cluster-scoped objects that Auto takes, once the
// namespaced objects are listed: Namespace objects, CustomResourceDefinitions
// of the custom resources taken, PersistentVolumes bound to the claims taken,
// the StorageClasses of those claims and volumes, and the ClusterRoles that
// the role bindings taken refer to.
func (e *engine) addDependencies(ctx context.Context, resources []resource) error {
	var items []archive.Item
	if e.sel.takesDependency(namespacesKey) {
		items = append(items, e.nsObjects...)
	}
	if crds, ok := find(resources, crdsKey); ok && e.sel.takesDependency(crdsKey) {
		e.mu.Lock()
		var names []string
		for k := range e.listed {
			if k.group != "" {
				names = append(names, k.resource+"."+k.group)
			}
		}
		e.mu.Unlock()
		// A resource with no CustomResourceDefinition is built in or aggregated.
		items = append(items, e.getAll(ctx, crds, names, func(string) string { return "" })...)
	}
	if e.sel.selfService == "" {
		for _, dep := range []struct {
			key   resourceKey
			names map[string]bool
			why   string
		}{
			{pvsKey, e.deps.pvs, "bound to a PersistentVolumeClaim in this backup"},
			{storageClassesKey, e.deps.storageClasses, "used by a PersistentVolumeClaim or PersistentVolume in this backup"},
			{clusterRolesKey, e.deps.clusterRoles, "referred to by a RoleBinding in this backup"},
		} {
			r, ok := find(resources, dep.key)
			if !ok || !e.sel.takesDependency(dep.key) {
				continue
			}
			got := e.getAll(ctx, r, keys(dep.names), func(name string) string {
				return fmt.Sprintf("%s %s, %s, does not exist", r.kind, name, dep.why)
			})
			if dep.key == pvsKey {
				e.noteVolumeClasses(got)
			}
			items = append(items, got...)
		}
	}
	e.send(ctx, items)
	return context.Cause(ctx)
}

// noteVolumeClasses adds the StorageClasses of volumes to the dependencies.
func (e *engine) noteVolumeClasses(pvs []archive.Item) {
	for _, it := range pvs {
		var pv struct {
			Spec struct {
				StorageClassName string `json:"storageClassName"`
			} `json:"spec"`
		}
		if json.Unmarshal(it.Object, &pv) == nil && pv.Spec.StorageClassName != "" {
			e.deps.storageClasses[pv.Spec.StorageClassName] = true
		}
	}
}

// getAll reads the named objects of r; missing(name) is the warning for one
// that does not exist ("" to say nothing).
func (e *engine) getAll(ctx context.Context, r resource, names []string, missing func(string) string) []archive.Item {
	sort.Strings(names)
	var items []archive.Item
	for _, name := range names {
		raw, err := e.api.get(ctx, r, "", name)
		switch {
		case ctx.Err() != nil:
			return items
		case apierrors.IsNotFound(err):
			if msg := missing(name); msg != "" {
				e.logWarning(nil, msg)
			}
			continue
		case err != nil:
			e.logError(nil, fmt.Sprintf("could not read %s %s: %v; it is not in this backup", r.kind, name, err))
			continue
		}
		it, err := e.item(r, raw)
		if err != nil {
			e.logError(nil, err.Error())
			continue
		}
		items = append(items, it)
	}
	return items
}

// item makes an archive item of one object read with get.
func (e *engine) item(r resource, raw []byte) (archive.Item, error) {
	var h head
	if err := json.Unmarshal(raw, &h); err != nil {
		return archive.Item{}, fmt.Errorf("the API server returned an object of %s that is not valid JSON: %w", r.key(), err)
	}
	return archive.Item{
		Group: r.gvr.Group, Version: r.gvr.Version, Resource: r.gvr.Resource, Kind: r.kind,
		Name: h.Metadata.Name, Namespace: h.Metadata.Namespace, Object: raw,
	}, nil
}

func find(resources []resource, k resourceKey) (resource, bool) {
	for _, r := range resources {
		if r.key() == k {
			return r, true
		}
	}
	return resource{}, false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
