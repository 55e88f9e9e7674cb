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

// writeVolume creates a PersistentVolume that does not exist, pre-bound to
// its (mapped) claim. One that exists is never changed, whatever the policy:
// it holds a claim's data.
func (r *run) writeVolume(ctx context.Context, e *entry) {
	pv, err := decode(e.Object)
	if err != nil {
		r.fail(e.Ref, "Not restored: %v", err)
		return
	}
	want, hasClaim := claimOf(pv)
	if hasClaim && r.filledClaim(want) {
		r.excludeWith(archive.LevelInfo, e.Ref, "Left out: the data of its claim %s is restored from the backup's volume snapshot into a new volume", want)
		return
	}
	out, _, err := r.api.create(ctx, e.Ref, "", e.Object, false)
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

// prepareClaim decides whether a claim keeps spec.volumeName: only when the
// volume is pre-bound to it. A volume that names exactly this claim, and was
// bound to a claim of that name that is gone, is released from the old
// claim's UID, so the claim binds to it again. Otherwise volumeName goes,
// and the claim gets a new volume.
func (r *run) prepareClaim(ctx context.Context, e *entry) ([]byte, error) {
	obj, err := decode(e.Object)
	if err != nil {
		return nil, err
	}
	vol := str(obj, "spec", "volumeName")
	if vol == "" {
		return e.Object, nil
	}
	if _, ok := r.snapshotOf(claim{Namespace: e.Ref.Namespace, Name: e.Ref.Name}); ok {
		delete(mapOf(obj, "spec"), "volumeName")
		return json.Marshal(obj) // a new volume, filled from the snapshot
	}
	me := claim{Namespace: e.Namespace, Name: e.Name}
	r.mu.Lock()
	bound, ok := r.volumes[vol]
	r.mu.Unlock()
	if ok && bound == me {
		return e.Object, nil
	}

	var why string
	raw, err := r.api.get(ctx, volumesRef, "", vol)
	switch {
	case isNotFound(err):
		why = "is neither restored nor in the cluster"
	case apierrors.IsForbidden(err):
		why = "the restore may not read (a team's restore reads as its requester)"
	case err != nil:
		return nil, fmt.Errorf("reading its PersistentVolume %s: %w", vol, err)
	default:
		pv := mustDecode(raw)
		live, has := claimOf(pv)
		switch {
		case !has:
			why = "is not reserved for it"
		case live != me:
			why = "belongs to claim " + live.String()
		default:
			if err := r.rebind(ctx, e, vol, pv); err != nil {
				why = fmt.Sprintf("was bound to the deleted claim and could not be released for this one (%v)", err)
				break
			}
			return e.Object, nil
		}
	}
	delete(mapOf(obj, "spec"), "volumeName")
	r.log(archive.LevelWarning, &e.Ref, "Restored%s without its volume %s, which %s: the claim gets a new, empty volume from its storage class",
		r.as(e), vol, why)
	return json.Marshal(obj)
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

// fill is a claim the restore created whose data comes from a snapshot.
type fill struct {
	ref             archive.ItemRef
	snapshot        archive.VolumeSnapshot
	namespace, name string // where the claim went
}

// snapshotOf is the backup's snapshot of the data of c (as the backup names it).
func (r *run) snapshotOf(c claim) (archive.VolumeSnapshot, bool) {
	return r.opts.Reader.Manifest().Volume(c.Namespace, c.Name)
}

// filledClaim reports whether the claim c (where the restore puts it, as a
// restored volume's claimRef names it) gets its data from a snapshot.
func (r *run) filledClaim(c claim) bool {
	for _, v := range r.opts.Reader.Manifest().Volumes {
		if r.mapNamespace(v.Namespace) == c.Namespace && v.Claim == c.Name {
			return true
		}
	}
	return false
}

// toFill notes a claim just created, if the backup holds its data.
func (r *run) toFill(e *entry) {
	if e.Ref.Group != "" || e.Ref.Resource != "persistentvolumeclaims" {
		return
	}
	v, ok := r.snapshotOf(claim{Namespace: e.Ref.Namespace, Name: e.Ref.Name})
	if !ok {
		return
	}
	r.mu.Lock()
	r.fills = append(r.fills, fill{ref: e.Ref, snapshot: v, namespace: e.Namespace, name: e.Name})
	r.mu.Unlock()
}

// fillVolumes fills the claims created from their snapshots, one at a
// time, before any workload that mounts them is written. A claim that
// could not be filled is an error in the log: the restore is not a Success.
func (r *run) fillVolumes(ctx context.Context) {
	for _, f := range r.fills {
		if ctx.Err() != nil {
			return
		}
		if r.opts.FillVolume == nil {
			r.log(archive.LevelError, &f.ref, "The claim's data was not restored: this spoke cannot restore volume data; the claim is empty")
			continue
		}
		if err := r.opts.FillVolume(ctx, f.snapshot, f.namespace, f.name); err != nil {
			r.log(archive.LevelError, &f.ref, "The claim's data was not restored: %v", err)
			continue
		}
		r.log(archive.LevelInfo, &f.ref, "The claim's data was restored from snapshot %s: %d files, %d bytes", f.snapshot.Snapshot, f.snapshot.Files, f.snapshot.Bytes)
	}
}
