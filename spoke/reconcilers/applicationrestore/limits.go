package applicationrestore

import (
	"context"
	"fmt"
	"os"
	"sync"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	"github.com/lifeboat-dev/lifeboat/spoke/slots"
)

// Defaults of the Reconciler's limits.
const (
	DefaultMaxRunning            = 2
	DefaultMaxSelfServiceRunning = 1
)

// waiting is why a restore that may run waits, Pending; it is tried again.
type waiting struct{ why string }

func (w *waiting) Error() string { return w.why }

// claimSlot takes a run slot of the restore's pool (the hub's, or teams'),
// or makes the restore wait. The job frees it when it ends.
func (r *Reconciler) claimSlot(_ context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	r.slotsOnce.Do(func() {
		r.slots = &slots.Slots{Kind: "restore",
			Hub: positive(r.MaxRunning, DefaultMaxRunning), SelfService: positive(r.MaxSelfServiceRunning, DefaultMaxSelfServiceRunning),
			HubFlag: "max-restores", SelfServiceFlag: "max-self-service-restores"}
	})
	free, why := r.slots.Take(selfService(ar) != "")
	if free == nil {
		return &waiting{why}
	}
	j.release = append(j.release, free)
	return nil
}

// checkItems refuses a backup with more objects than one restore takes.
func (r *Reconciler) checkItems(_ context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	if err := restore.CheckItems(j.reader.Manifest(), r.maxItems()); err != nil {
		return &refusal{backupv1alpha1.ReasonTooManyItems, fmt.Sprintf(
			"The restore cannot start: %v (--restore-max-items); nothing was changed in the cluster. "+
				"Restore it in parts (spec.selection), or ask the cluster admin to raise the limit", err)}
	}
	return nil
}

// reserveSpool reserves the spool the restore needs, or refuses a restore
// that can never fit, or makes it wait while other restores hold the room.
func (r *Reconciler) reserveSpool(_ context.Context, _ *backupv1alpha1.ApplicationRestore, j *job) error {
	need := restore.SpoolNeed(j.reader.Manifest())
	free, err := restore.FreeSpace(r.spoolDir())
	if err != nil {
		return err
	}
	release, err := r.spool.reserve(need, free, r.SpoolSize)
	if err != nil {
		return err
	}
	j.spool = need
	j.release = append(j.release, release)
	return nil
}

// spoolRoom accounts the spool that running restores may still fill: a
// restore starts only when what it needs fits beside what the others
// reserved, within the spool's size and the free space of its file system.
type spoolRoom struct {
	mu       sync.Mutex
	reserved int64
}

// reserve takes need bytes of a spool of size (0: no size, only the file
// system's free bytes). It returns a *refusal when need can never fit, and a
// *waiting when it fits once the other restores end.
func (s *spoolRoom) reserve(need, free, size int64) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > 0 && need > size {
		return nil, &refusal{backupv1alpha1.ReasonInsufficientSpoolSpace, fmt.Sprintf(
			"The restore needs %s of spool, more than the spool's %s (--restore-spool-size, the chart's limits.restoreSpoolSize); "+
				"nothing was changed in the cluster. Restore it in parts (spec.selection), or ask the cluster admin for a bigger spool",
			quantity(need), quantity(size))}
	}
	room := free - s.reserved
	if size > 0 {
		room = min(room, size-s.reserved)
	}
	switch {
	case need <= room:
	case s.reserved > 0:
		return nil, &waiting{fmt.Sprintf("Waiting for room in the restore spool: the restore needs %s, and other restores hold %s of it", quantity(need), quantity(s.reserved))}
	default:
		return nil, &refusal{backupv1alpha1.ReasonInsufficientSpoolSpace, fmt.Sprintf(
			"The restore needs %s of spool, but its file system has only %s free; nothing was changed in the cluster", quantity(need), quantity(free))}
	}
	s.reserved += need
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.reserved -= need
		s.mu.Unlock()
	}), nil
}

// quantity formats n bytes for people: "512 bytes", "1.5 GiB".
func quantity(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f, i = f/1024, i+1
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func positive[T int | int64](n, def T) T {
	if n > 0 {
		return n
	}
	return def
}

func (r *Reconciler) maxItems() int64 { return positive(r.MaxItems, restore.DefaultMaxItems) }

func (r *Reconciler) spoolDir() string {
	if r.SpoolDir != "" {
		return r.SpoolDir
	}
	return os.TempDir()
}
