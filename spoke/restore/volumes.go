package restore

import (
	"context"
	"encoding/json"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// claim names a PersistentVolumeClaim.
type claim struct{ Namespace, Name string }

func (c claim) String() string { return c.Namespace + "/" + c.Name }

// claimOf returns the claim a PersistentVolume's claimRef names.
func claimOf(pv map[string]any) (claim, bool) {
	ref := mapOf(mapOf(pv, "spec"), "claimRef")
	if ref == nil || str(ref, "name") == "" {
		return claim{}, false
	}
	return claim{Namespace: str(ref, "namespace"), Name: str(ref, "name")}, true
}

var volumesRef = archive.ItemRef{Version: "v1", Resource: "persistentvolumes", Kind: "PersistentVolume"}

// otherCluster is true when the backup was taken on another cluster than the
// one restored to (or that one is not known): its PersistentVolumes point at
// that cluster's disks.
func (r *run) otherCluster() bool {
	return r.opts.Cluster == "" || r.opts.Reader.Manifest().SourceCluster != r.opts.Cluster
}

// betaStorageClass is the annotation that named a claim's class before
// spec.storageClassName; the API server still honours it.
const betaStorageClass = "volume.beta.kubernetes.io/storage-class"

// mapStorageClass renames the StorageClass of a claim or volume as
// Options.StorageClassMapping says, and logs it.
func (r *run) mapStorageClass(e *entry, obj map[string]any) {
	for _, field := range []struct {
		m   map[string]any
		key string
	}{{mapOf(obj, "spec"), "storageClassName"}, {mapOf(mapOf(obj, "metadata"), "annotations"), betaStorageClass}} {
		old, _ := field.m[field.key].(string)
		to, ok := r.opts.StorageClassMapping[old]
		if old == "" || !ok {
			continue
		}
		field.m[field.key] = string(to)
		r.log(archive.LevelInfo, &e.Ref, "Restored%s with StorageClass %s instead of %s (storageClassMappings)", r.as(e), to, old)
	}
}

// writeVolume creates a PersistentVolume that does not exist, pre-bound to
// its (mapped) claim. One that exists is never changed, whatever the policy:
// it holds a claim's data. A volume of another cluster is never created.
func (r *run) writeVolume(ctx context.Context, e *entry) {
	if r.otherCluster() {
		r.excludeWith(archive.LevelWarning, e.Ref, "Left out: PersistentVolume %s was taken on cluster %s and points at that cluster's storage; a restore onto another cluster never creates it, and its claim gets a new, empty volume from its StorageClass",
			e.Name, r.opts.Reader.Manifest().SourceCluster)
		return
	}
	pv, err := decode(e.Object)
	if err != nil {
		r.fail(e.Ref, "Not restored: %v", err)
		return
	}
	want, hasClaim := claimOf(pv)
	r.mapStorageClass(e, pv)
	body, err := json.Marshal(pv)
	if err != nil {
		r.fail(e.Ref, "Not restored: %v", err)
		return
	}
	out, _, err := r.api.create(ctx, e.Ref, "", body, false)
	if err != nil {
		r.fail(e.Ref, "Not restored: %v", err)
		return
	}
	if out == created {
		if hasClaim {
			r.mu.Lock()
			r.volumes[e.Name] = want
			r.mu.Unlock()
		}
		r.done(e, Created, archive.LevelInfo, "Created")
		return
	}
	raw, err := r.api.get(ctx, volumesRef, "", e.Name)
	if err != nil {
		r.done(e, Existed, archive.LevelWarning, "Skipped: PersistentVolume %s exists and is never changed by a restore (reading it: %v)", e.Name, err)
		return
	}
	live, has := claimOf(mustDecode(raw))
	switch {
	case hasClaim && has && live == want:
		r.done(e, Existed, archive.LevelInfo, "Skipped: PersistentVolume %s exists and belongs to claim %s, which this restore restores", e.Name, want)
	case has:
		r.done(e, Existed, archive.LevelWarning, "Skipped: PersistentVolume %s exists and belongs to claim %s; a restore never gives a volume to another claim", e.Name, live)
	default:
		r.done(e, Existed, archive.LevelWarning, "Skipped: PersistentVolume %s exists and is never changed by a restore", e.Name)
	}
}

// prepareClaim maps the claim's StorageClass and decides whether it keeps
// spec.volumeName: see losesVolume. A claim that does not gets a new volume.
func (r *run) prepareClaim(ctx context.Context, e *entry) ([]byte, error) {
	obj, err := decode(e.Object)
	if err != nil {
		return nil, err
	}
	r.mapStorageClass(e, obj)
	if vol := str(obj, "spec", "volumeName"); vol != "" {
		why, err := r.losesVolume(ctx, e, vol)
		if err != nil {
			return nil, err
		}
		if why != "" {
			delete(mapOf(obj, "spec"), "volumeName")
			r.log(archive.LevelWarning, &e.Ref, "Restored%s without its volume %s, which %s: the claim gets a new, empty volume from its storage class",
				r.as(e), vol, why)
		}
	}
	return json.Marshal(obj)
}

// losesVolume says why a claim may not keep its volume vol, or "" when it
// may: only when the volume is pre-bound to it on the backup's own cluster.
// A volume that names exactly this claim, and was bound to a claim of that
// name that is gone, is released from the old claim's UID, so the claim
// binds to it again.
func (r *run) losesVolume(ctx context.Context, e *entry, vol string) (string, error) {
	if r.otherCluster() {
		return fmt.Sprintf("belongs to cluster %s, where the backup was taken", r.opts.Reader.Manifest().SourceCluster), nil
	}
	me := claim{Namespace: e.Namespace, Name: e.Name}
	r.mu.Lock()
	bound, ok := r.volumes[vol]
	r.mu.Unlock()
	if ok && bound == me {
		return "", nil
	}

	raw, err := r.api.get(ctx, volumesRef, "", vol)
	switch {
	case isNotFound(err):
		return "is neither restored nor in the cluster", nil
	case apierrors.IsForbidden(err):
		return "the restore may not read (a team's restore reads as its requester)", nil
	case err != nil:
		return "", fmt.Errorf("reading its PersistentVolume %s: %w", vol, err)
	}
	pv := mustDecode(raw)
	live, has := claimOf(pv)
	switch {
	case !has:
		return "is not reserved for it", nil
	case live != me:
		return "belongs to claim " + live.String(), nil
	}
	if err := r.rebind(ctx, e, vol, pv); err != nil {
		return fmt.Sprintf("was bound to the deleted claim and could not be released for this one (%v)", err), nil
	}
	return "", nil
}

// rebind clears the stale claimRef.uid of a volume that names the claim
// being restored, when the claim it was bound to (that UID) no longer
// exists: the volume was retained after its claim was deleted. It does not
// wait for the volume to show Released, which can lag. A volume still bound
// to a live claim, or pre-bound, is left alone.
func (r *run) rebind(ctx context.Context, e *entry, vol string, pv map[string]any) error {
	ref := mapOf(mapOf(pv, "spec"), "claimRef")
	uid := str(ref, "uid")
	if uid == "" {
		return nil
	}
	raw, err := r.api.get(ctx, e.Ref, e.Namespace, e.Name)
	switch {
	case err == nil && uidOf(raw) == uid:
		return nil // its claim is alive; the restore skips the claim
	case err != nil && !isNotFound(err):
		return err
	}
	ops := []map[string]any{
		{"op": "test", "path": "/spec/claimRef/uid", "value": uid},
		{"op": "remove", "path": "/spec/claimRef/uid"},
	}
	if _, ok := ref["resourceVersion"]; ok {
		ops = append(ops, map[string]any{"op": "remove", "path": "/spec/claimRef/resourceVersion"})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := r.api.jsonPatch(ctx, volumesRef, "", vol, patch); err != nil {
		return err
	}
	r.log(archive.LevelInfo, &e.Ref, "PersistentVolume %s, retained for this claim after the claim was deleted, will bind to it again", vol)
	return nil
}
