package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// spoolError carries a failure of the spool out of archive.Reader.Items, so
// that it is not taken for a fault of the backup.
type spoolError struct{ err error }

func (e spoolError) Error() string { return e.err.Error() }

// read verifies the backup, then reads it again, checking it again, and
// spools what the restore will write. Nothing reaches the cluster before
// both reads have ended without error.
func (r *run) read(ctx context.Context) error {
	if err := r.opts.Reader.Verify(ctx); err != nil {
		return &ReadError{err}
	}
	volumeClasses := map[string]string{}
	err := r.opts.Reader.Items(ctx, func(it archive.Item) error {
		if err := r.plan(it, volumeClasses); err != nil {
			return spoolError{err}
		}
		return nil
	})
	var se spoolError
	switch {
	case errors.As(err, &se):
		return se.err
	case err != nil:
		return &ReadError{err}
	}
	for pv, sc := range volumeClasses {
		if r.needs["persistentvolumes/"+pv] {
			r.needs["storageclasses/"+sc] = true
		}
	}
	return r.spool.finish()
}

// plan decides what happens to one item and spools it if it is to be
// written. volumeClasses collects the storage classes of the PVs that Auto
// may take, since a PV needs its class.
func (r *run) plan(it archive.Item, volumeClasses map[string]string) error {
	if r.seen++; r.seen > r.opts.MaxItems {
		return fmt.Errorf("%w: backup %s holds more than the %d objects one restore takes", ErrTooManyItems, r.opts.Reader.Manifest().BackupID, r.opts.MaxItems)
	}
	r.bytes.Add(int64(len(it.Object)) + it.Oversize)
	ref := it.Ref()
	if it.Oversize > 0 {
		r.fail(ref, "Not restored: the object is %d bytes, more than the %d a restore reads (the API server takes about 3 MiB)",
			it.Oversize, r.opts.Reader.Limits.MaxObjectSize)
		return nil
	}
	if why := neverRestored(ref); why != "" {
		r.exclude(ref, why)
		return nil
	}
	obj, err := decode(it.Object)
	if err != nil {
		r.fail(ref, "Not restored: the object cannot be decoded: %v", err)
		return nil
	}
	v := r.sel.decide(ref, obj)
	if v == leaveOut {
		r.exclude(ref, "not selected by the restore's selection")
		return nil
	}
	if why := regenerated(ref, obj); why != "" {
		r.exclude(ref, why)
		return nil
	}

	e := &entry{Ref: ref, Name: ref.Name, UID: str(obj, "metadata", "uid")}
	if ref.Namespace != "" {
		e.Namespace = r.mapNamespace(ref.Namespace)
	}
	if isNamespace(ref) {
		e.Name = r.mapNamespace(ref.Name)
	}
	if !r.selfServiceAllows(e) || !r.tenancyAllows(e) {
		return nil
	}
	switch {
	case v == takeIfNeeded:
		e.Need = needKey(ref)
		if ref.Resource == "persistentvolumes" {
			if sc := str(obj, "spec", "storageClassName"); sc != "" {
				volumeClasses[ref.Name] = sc
			}
		}
	case ref.Namespace != "" && r.sel.policy == backupv1alpha1.ClusterScopedAuto:
		for _, n := range needsOf(ref, obj) {
			r.needs[n] = true
		}
	}
	if ref.Namespace != "" {
		r.namespaces[e.Namespace] = true
	}
	for _, o := range list(obj, "metadata", "ownerReferences") {
		if uid := str(asMap(o), "uid"); uid != "" {
			r.ownerUIDs[uid] = true
			e.Owned = true
		}
	}
	e.Merge = isDefaultServiceAccount(ref)

	clean(ref, obj, r.mapNamespace)
	if e.Object, err = json.Marshal(obj); err != nil {
		r.fail(ref, "Not restored: %v", err)
		return nil
	}
	return r.spool.add(classOf(ref), e)
}

// selfServiceAllows reports whether a self-service restore may write the
// entry, and logs why not.
func (r *run) selfServiceAllows(e *entry) bool {
	only := r.opts.OnlyNamespace
	switch {
	case only == "":
		return true
	case isNamespace(e.Ref) && e.Name == only:
		r.excludeWith(archive.LevelInfo, e.Ref, "Left out: namespace %s is where this restore runs, so it exists", only)
	case e.Namespace == "":
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: a restore in namespace %s may not write cluster-scoped objects", only)
	case e.Namespace != only:
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: it would go to namespace %s, and a restore in namespace %s may write only there", e.Namespace, only)
	case policyResources[e.Ref.Group+"/"+e.Ref.Resource] && !r.opts.PolicyResources:
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: a restore in namespace %s may write %s only if its BackupTarget allows policyResources", only, e.Ref.Resource)
	default:
		return true
	}
	return false
}

// policyResources are the kinds that say what a namespace may do (RBAC,
// quota, policy), by group/resource: a team restores them only where the
// target allows it.
var policyResources = map[string]bool{
	"rbac.authorization.k8s.io/roles":        true,
	"rbac.authorization.k8s.io/rolebindings": true,
	"/resourcequotas":                        true,
	"/limitranges":                           true,
	"networking.k8s.io/networkpolicies":      true,
	"policy/poddisruptionbudgets":            true,
}

// tenancyAllows reports whether the grant of the restore's hub tenant lets
// it write the entry, and logs why not. A Namespace object counts as in its
// own namespace.
func (r *run) tenancyAllows(e *entry) bool {
	t := r.opts.Tenancy
	switch {
	case t == nil:
		return true
	case isNamespace(e.Ref) && !t.AllowsNamespace(e.Name):
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: the hub tenant may not restore into namespace %s", e.Name)
	case isNamespace(e.Ref):
		return true
	case e.Namespace == "" && !t.AllowsClusterScoped():
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: the hub tenant may not restore cluster-scoped objects")
	case e.Namespace != "" && !t.AllowsNamespace(e.Namespace):
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: it would go to namespace %s, and the hub tenant may not restore into it", e.Namespace)
	default:
		return true
	}
	return false
}

// decode decodes an object's JSON, keeping numbers as they are written.
func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
