package volumes

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/snapshotmaintenance"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// clientUser is the kopia user name of every connection the spoke opens;
// with the cluster's name as host it makes the repository's maintenance
// owner, lifeboat@<cluster>, the same in every spoke pod of the cluster.
const clientUser = "lifeboat"

// clientOptions are the kopia client options of the cluster's connections.
func clientOptions(cluster string) repo.ClientOptions {
	return repo.ClientOptions{Username: clientUser, Hostname: cluster}
}

// MaintenanceOwner is the kopia maintenance owner of cluster's repositories.
func MaintenanceOwner(cluster string) string { return clientUser + "@" + cluster }

// ErrNotOwner is wrapped by Maintain's error when another kopia user owns
// the repository's maintenance: the spoke leaves it to that user.
var ErrNotOwner = errors.New("another kopia user owns the repository's maintenance")

// Maintain runs kopia's snapshot and repository maintenance
// (snapshotmaintenance.Run) on the repository. With maintenance.ModeAuto
// it runs the cycle the repository's schedule says is due: the quick cycle
// every hour and the full cycle, which deletes the contents and blobs that
// no snapshot references any more, every 24 hours (kopia's defaults).
// safety holds back what a backup still writing may need
// (maintenance.SafetyFull in production). A repository whose maintenance
// has no owner yet is claimed for the cluster (MaintenanceOwner). The mode
// returned is the cycle that ran: quick, full, or none when none was due.
func (r *Repository) Maintain(ctx context.Context, mode maintenance.Mode, safety maintenance.SafetyParameters) (maintenance.Mode, error) {
	dr, ok := r.Repository.(repo.DirectRepository)
	if !ok {
		return maintenance.ModeNone, fmt.Errorf("the volume repository %s is not a direct kopia repository", r.Prefix())
	}
	ran := maintenance.ModeNone
	err := repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "lifeboat repository maintenance"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		if err := r.claimMaintenance(ctx, w); err != nil {
			return err
		}
		before, err := maintenance.GetSchedule(ctx, w)
		if err != nil {
			return err
		}
		err = snapshotmaintenance.Run(ctx, w, mode, false, safety)
		var notOwned maintenance.NotOwnedError
		if errors.As(err, &notOwned) {
			return fmt.Errorf("%w: %s", ErrNotOwner, notOwned.Owner)
		}
		if err != nil {
			return err
		}
		// RunExclusive moves the schedule of the cycle it runs before it runs it.
		after, err := maintenance.GetSchedule(ctx, w)
		switch {
		case err != nil:
			return err
		case !after.NextFullMaintenanceTime.Equal(before.NextFullMaintenanceTime):
			ran = maintenance.ModeFull
		case !after.NextQuickMaintenanceTime.Equal(before.NextQuickMaintenanceTime):
			ran = maintenance.ModeQuick
		}
		return nil
	})
	if err != nil {
		return ran, fmt.Errorf("maintaining the volume repository %s: %w", r.Prefix(), err)
	}
	return ran, nil
}

// claimMaintenance makes this connection's user the maintenance owner of a
// repository that has none, with kopia's default cycles.
func (r *Repository) claimMaintenance(ctx context.Context, w repo.DirectRepositoryWriter) error {
	p, err := maintenance.GetParams(ctx, w)
	if err != nil || p.Owner != "" {
		return err
	}
	p.Owner = w.ClientOptions().UsernameAtHost()
	if err := maintenance.SetParams(ctx, w, p); err != nil {
		return err
	}
	return w.Flush(ctx)
}

// Namespaces lists the namespaces that have a volume repository of cluster
// in blobs: the folders under RepositoriesDir/<cluster>/ that hold kopia's
// format blob. Repositories of other clusters are not looked at.
func Namespaces(ctx context.Context, blobs Blobs, cluster string) ([]string, error) {
	some, err := archive.RepositoryPath(cluster, "default")
	if err != nil {
		return nil, fmt.Errorf("volume repositories: %w", err)
	}
	dir := path.Dir(strings.TrimSuffix(some, "/")) + "/"
	var out []string
	err = blobs.WalkItems(ctx, dir, func(items []blob.Item) error {
		for _, it := range items {
			ns, rest, ok := strings.Cut(strings.TrimPrefix(it.Name, dir), "/")
			if ok && rest == format.KopiaRepositoryBlobID {
				out = append(out, ns)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the volume repositories of cluster %s: %w", cluster, err)
	}
	return out, nil
}
