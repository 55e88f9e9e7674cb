package applicationbackup

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/rest"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/backup"
)

// Claim is a bound PersistentVolumeClaim that a backup took.
type Claim struct {
	Namespace, Name string
	// Volume is the PersistentVolume it is bound to (spec.volumeName).
	Volume string
}

func (c Claim) String() string { return c.Namespace + "/" + c.Name }

// SkippedClaim is a claim whose data is not in the backup, and why.
type SkippedClaim struct {
	Claim
	// Reason completes "volume data not backed up: ", e.g. "volumes: Skip".
	Reason string
}

// VolumeBackup is what a VolumeMover backs up: the files in Claims, into
// the backup that Writer writes to Dir of Store.
type VolumeBackup struct {
	Target   *backupv1alpha1.BackupTarget
	Store    archive.Store
	Dir      string
	BackupID string
	Writer   *archive.Writer
	Claims   []Claim
	// Progress takes the bytes of volume data read so far.
	Progress func(bytes int64)
	// Exec is the identity backup commands run as.
	Exec *rest.Config
}

// VolumeMover backs up the files in PersistentVolumeClaims and the output
// of backup commands. BackUpVolumes returns the claims it could not back
// up, each with its reason; every other claim of b is in the backup.
// BackUpCommands does the same for sources (b.Claims unused). An error
// fails the whole backup (the backup can no longer be written).
type VolumeMover interface {
	BackUpVolumes(ctx context.Context, b VolumeBackup) ([]SkippedClaim, error)
	BackUpCommands(ctx context.Context, b VolumeBackup, sources []CommandSource) ([]SkippedCommand, error)
}

// Reasons a claim's data is not backed up.
const (
	skipPolicy  = "volumes: Skip"
	skipNoMover = "this spoke has no volume data mover"
)

// backUpCommands runs the backup commands of sources in the Volumes stage,
// after the claims' data; without a VolumeMover none runs. The volumes
// policy is about claims: a pod asks for its command with its annotation.
// It logs a warning naming each command whose output is not in the backup,
// and returns them.
func (r *Reconciler) backUpCommands(ctx context.Context, rn *run, st *statusWriter, store archive.Store, w *archive.Writer, sources []CommandSource) ([]SkippedCommand, error) {
	if len(sources) == 0 {
		return nil, nil
	}
	var skipped []SkippedCommand
	if r.VolumeData == nil {
		skipped = skipCommands(sources, skipNoMover)
	} else {
		var err error
		base := st.volumeBytes.Load() // the claims' data
		skipped, err = r.VolumeData.BackUpCommands(ctx, VolumeBackup{
			Target: rn.target, Store: store, Dir: rn.dir, BackupID: rn.id, Writer: w,
			Progress: func(n int64) { st.volumeBytes.Store(base + n) }, Exec: r.RESTConfig,
		}, sources)
		if err != nil {
			return nil, err
		}
	}
	for _, s := range skipped {
		w.Log(archive.LevelWarning, nil, fmt.Sprintf("Backup command output not backed up (%s): %s is not in the backup", s.Reason, s.CommandSource))
	}
	return skipped, nil
}

// backUpVolumes runs the Volumes stage over the bound claims the Resources
// stage took: with volumes Skip, or without a VolumeMover, no claim's data
// is backed up. It logs a warning naming each claim that was skipped, and
// returns them.
func (r *Reconciler) backUpVolumes(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup, st *statusWriter, store archive.Store, w *archive.Writer, claims []Claim) ([]SkippedClaim, error) {
	st.setStage(backupv1alpha1.StageVolumes)
	if len(claims) == 0 {
		return nil, nil
	}
	var skipped []SkippedClaim
	switch {
	case ab.Spec.Volumes == backupv1alpha1.VolumesSkip:
		skipped = skipAll(claims, skipPolicy)
	case r.VolumeData == nil:
		skipped = skipAll(claims, skipNoMover)
	default:
		var err error
		skipped, err = r.VolumeData.BackUpVolumes(ctx, VolumeBackup{
			Target: rn.target, Store: store, Dir: rn.dir, BackupID: rn.id, Writer: w, Claims: claims,
			Progress: st.volumeBytes.Store,
		})
		if err != nil {
			return nil, err
		}
	}
	for _, s := range skipped {
		ref := claimRef(s.Claim)
		w.Log(archive.LevelWarning, &ref, fmt.Sprintf("Volume data not backed up (%s): PersistentVolumeClaim %s is in the backup as an object only; a restore gives it a new, empty volume", s.Reason, s.Claim))
	}
	return skipped, nil
}

func skipAll(claims []Claim, reason string) []SkippedClaim {
	out := make([]SkippedClaim, len(claims))
	for i, c := range claims {
		out[i] = SkippedClaim{Claim: c, Reason: reason}
	}
	return out
}

var claimsRef = archive.ItemRef{Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim"}

func claimRef(c Claim) archive.ItemRef {
	ref := claimsRef
	ref.Namespace, ref.Name = c.Namespace, c.Name
	return ref
}

// maxNamedClaims bounds the claims a status message names; the backup's log
// names them all.
const maxNamedClaims = 10

// describeSkipped says, for the status, whose volume data is not in the
// backup, by reason, e.g. "volume data of 2 PersistentVolumeClaims not
// backed up (volumes: Skip): shop/data, shop/logs".
func describeSkipped(skipped []SkippedClaim) string {
	var reasons []string
	byReason := map[string][]string{}
	for _, s := range skipped {
		if _, ok := byReason[s.Reason]; !ok {
			reasons = append(reasons, s.Reason)
		}
		byReason[s.Reason] = append(byReason[s.Reason], s.Claim.String())
	}
	parts := make([]string, 0, len(reasons))
	for _, reason := range reasons {
		names := byReason[reason]
		slices.Sort(names)
		what := "PersistentVolumeClaim"
		if len(names) != 1 {
			what += "s"
		}
		shown := names
		more := ""
		if len(names) > maxNamedClaims {
			shown = names[:maxNamedClaims]
			more = fmt.Sprintf(" and %d more (the backup's log names them)", len(names)-maxNamedClaims)
		}
		parts = append(parts, fmt.Sprintf("volume data of %d %s not backed up (%s): %s%s", len(names), what, reason, strings.Join(shown, ", "), more))
	}
	return strings.Join(parts, "; ")
}

// claimCollector passes the objects of the Resources stage on to the
// archive and notes the bound PersistentVolumeClaims among them.
type claimCollector struct {
	backup.Writer
	mu     sync.Mutex
	claims []Claim
}

func (c *claimCollector) Add(it archive.Item) error {
	if err := c.Writer.Add(it); err != nil {
		return err
	}
	if it.Group != "" || it.Resource != claimsRef.Resource {
		return nil
	}
	var pvc struct {
		Spec struct {
			VolumeName string `json:"volumeName"`
		} `json:"spec"`
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	}
	if json.Unmarshal(it.Object, &pvc) != nil || pvc.Status.Phase != "Bound" {
		return nil // not bound: it holds no data yet
	}
	c.mu.Lock()
	c.claims = append(c.claims, Claim{Namespace: it.Namespace, Name: it.Name, Volume: pvc.Spec.VolumeName})
	c.mu.Unlock()
	return nil
}

// taken returns the bound claims, sorted.
func (c *claimCollector) taken() []Claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.claims)
	slices.SortFunc(out, func(a, b Claim) int { return strings.Compare(a.String(), b.String()) })
	return out
}
