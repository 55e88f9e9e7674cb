package backupsync

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// PageName is the name of page n of the spoke BackupSync named sync:
// "<sync>-p<n, five digits>". The hub names the spoke sync after its own
// (namespace, name and a hash), so the names are deterministic and a retried
// sync overwrites its pages instead of adding more.
func PageName(sync string, page int32) string {
	return fmt.Sprintf("%s-p%05d", sync, page)
}

// pageWriter writes catalog entries, as they come, as pages of at most
// spec.pageSize into this cluster's namespace on the hub, the last one
// marked final (one empty final page when there are no entries). It holds
// one page: a full page is written when the next entry shows it is not the
// last.
type pageWriter struct {
	r       *Reconciler
	hub     client.Client
	bs      *backupv1alpha1.BackupSync
	size    int
	pending []fleetv1alpha1.BackupSummary
	pages   int32
	// What the final page says of the folders that were not listed.
	skipped                  []fleetv1alpha1.SkippedFolder
	skippedCount, incomplete int32
}

func (r *Reconciler) newPageWriter(hub client.Client, bs *backupv1alpha1.BackupSync) *pageWriter {
	size := int(bs.Spec.PageSize)
	if size <= 0 {
		size = DefaultPageSize
	}
	return &pageWriter{r: r, hub: hub, bs: bs, size: size}
}

func (w *pageWriter) add(ctx context.Context, entry fleetv1alpha1.BackupSummary) error {
	if len(w.pending) == w.size {
		if err := w.write(ctx, false); err != nil {
			return err
		}
	}
	w.pending = append(w.pending, entry)
	return nil
}

func (w *pageWriter) write(ctx context.Context, final bool) error {
	page := w.r.page(w.bs, w.pages, w.pending, final)
	if final {
		page.Spec.Skipped, page.Spec.SkippedCount, page.Spec.Incomplete = w.skipped, w.skippedCount, w.incomplete
	}
	if err := put(ctx, w.hub, page); err != nil {
		return fmt.Errorf("write catalog page %s/%s to the hub: %w", page.Namespace, page.Name, err)
	}
	w.pages++
	w.pending = nil
	return nil
}

// finish writes the final page, deletes pages of an earlier attempt beyond
// it, and returns the number of pages.
func (w *pageWriter) finish(ctx context.Context) (int32, error) {
	if err := w.write(ctx, true); err != nil {
		return w.pages, err
	}
	old := &fleetv1alpha1.BackupCatalogList{}
	if err := w.hub.List(ctx, old, client.InNamespace(w.r.Cluster), client.MatchingLabels{fleetv1alpha1.LabelSyncUID: string(w.bs.Spec.Hub.UID)}); err != nil {
		return w.pages, fmt.Errorf("list catalog pages on the hub: %w", err)
	}
	for i := range old.Items {
		if old.Items[i].Spec.Page >= w.pages {
			if err := w.hub.Delete(ctx, &old.Items[i]); ignoreNotFound(err) != nil {
				return w.pages, err
			}
		}
	}
	return w.pages, nil
}

func (r *Reconciler) page(bs *backupv1alpha1.BackupSync, n int32, entries []fleetv1alpha1.BackupSummary, final bool) *fleetv1alpha1.BackupCatalog {
	hubRef := bs.Spec.Hub
	loc := backupv1alpha1.HubObjectReference{Namespace: hubRef.Namespace, Name: backupv1alpha1.ObjectName(bs.Annotations[backupv1alpha1.SyncLocationAnnotation])}
	if loc.Name == "" {
		loc.Name = bs.Spec.Target
	}
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Cluster,
			Name:      PageName(bs.Name, n),
			Labels: map[string]string{
				fleetv1alpha1.LabelSyncUID:  string(hubRef.UID),
				fleetv1alpha1.LabelSyncName: labelValue(string(hubRef.Name)),
				"fleet.lifeboat.dev/page":   strconv.Itoa(int(n)),
			},
		},
		Spec: fleetv1alpha1.BackupCatalogSpec{
			Cluster:  backupv1alpha1.ClusterName(r.Cluster),
			Sync:     &hubRef,
			Location: &loc,
			Page:     n,
			Final:    final,
			Entries:  entries,
		},
	}
}

// put creates page, or replaces the spec of the page of the same name.
func put(ctx context.Context, hub client.Client, page *fleetv1alpha1.BackupCatalog) error {
	err := hub.Create(ctx, page)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := &fleetv1alpha1.BackupCatalog{}
	if err := hub.Get(ctx, client.ObjectKeyFromObject(page), cur); err != nil {
		return err
	}
	cur.Labels, cur.Spec = page.Labels, page.Spec
	return hub.Update(ctx, cur)
}

func typesUID(s string) types.UID { return types.UID(s) }

// labelValue keeps a name usable as a label value (names are at most 253
// characters, label values 63); the hub matches pages by UID, not by this.
func labelValue(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	for len(s) > 0 && !isAlnum(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
}
