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

// writePages writes entries as pages of at most spec.pageSize into this
// cluster's namespace on the hub, the last one marked final (one empty final
// page when there are no entries), and deletes pages of an earlier attempt
// beyond the last. It returns the number of pages.
func (r *Reconciler) writePages(ctx context.Context, hub client.Client, bs *backupv1alpha1.BackupSync, entries []fleetv1alpha1.BackupSummary) (int32, error) {
	size := int(bs.Spec.PageSize)
	if size <= 0 {
		size = DefaultPageSize
	}
	var pages int32
	for start := 0; start == 0 || start < len(entries); start += size {
		end := min(start+size, len(entries))
		page := r.page(bs, pages, entries[start:end], end == len(entries))
		if err := put(ctx, hub, page); err != nil {
			return pages, fmt.Errorf("write catalog page %s/%s to the hub: %w", page.Namespace, page.Name, err)
		}
		pages++
	}
	old := &fleetv1alpha1.BackupCatalogList{}
	if err := hub.List(ctx, old, client.InNamespace(r.Cluster), client.MatchingLabels{fleetv1alpha1.LabelSyncUID: string(bs.Spec.Hub.UID)}); err != nil {
		return pages, fmt.Errorf("list catalog pages on the hub: %w", err)
	}
	for i := range old.Items {
		if old.Items[i].Spec.Page >= pages {
			if err := hub.Delete(ctx, &old.Items[i]); ignoreNotFound(err) != nil {
				return pages, err
			}
		}
	}
	return pages, nil
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
			Sync:     hubRef,
			Location: loc,
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
