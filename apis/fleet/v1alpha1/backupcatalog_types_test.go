package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// The largest page the schema admits (500 entries, every field at its
// bounds, 20 skipped folders) stays well under etcd's 1.5 MiB request limit.
func TestLargestPageStaysUnderEtcdsLimit(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	ns := func() []backupv1alpha1.NamespaceName {
		out := make([]backupv1alpha1.NamespaceName, MaxSummaryNamespaces)
		for i := range out {
			out[i] = backupv1alpha1.NamespaceName(long(63))
		}
		return out
	}
	now := metav1.NewTime(time.Now())
	page := BackupCatalog{ObjectMeta: metav1.ObjectMeta{Name: long(253), Namespace: long(63)}}
	page.Spec.Cluster = backupv1alpha1.ClusterName(long(63))
	ref := &backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(long(63)), Name: backupv1alpha1.ObjectName(long(253)), UID: types.UID(long(36))}
	page.Spec.Sync, page.Spec.Location, page.Spec.Final, page.Spec.Page = ref, ref, true, 100000
	for range 500 {
		page.Spec.Entries = append(page.Spec.Entries, BackupSummary{
			ID: backupv1alpha1.BackupID(long(128)), SourceCluster: backupv1alpha1.ClusterName(long(63)), Hub: ref,
			Phase: backupv1alpha1.ApplicationBackupPartialSuccess, Items: 1 << 62, Warnings: 1 << 30, Errors: 1 << 30, SizeBytes: 1 << 62,
			StartTime: &now, CompletionTime: &now, Expiration: &now, Tombstone: true,
			Selection: &SelectionSummary{IncludedNamespaces: ns(), ExcludedNamespaces: ns(), NamespacesOmitted: 1000000,
				LabelSelector: true, Resources: true, ClusterScopedResources: backupv1alpha1.ClusterScopedInclude},
		})
	}
	for range 20 {
		page.Spec.Skipped = append(page.Spec.Skipped, SkippedFolder{Folder: long(512), Reason: long(1024)})
	}
	b, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the largest page is %d bytes", len(b))
	if len(b) > 1<<20 {
		t.Errorf("the largest page is %d bytes, more than 1 MiB", len(b))
	}
}
