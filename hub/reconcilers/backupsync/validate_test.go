package backupsync

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func TestValidateEntry(t *testing.T) {
	future := metav1.NewTime(time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name   string
		mutate func(*fleetv1alpha1.BackupSummary)
		want   string
	}{
		{"complete backup of a hub Backup", func(*fleetv1alpha1.BackupSummary) {}, ""},
		{"self-service", func(e *fleetv1alpha1.BackupSummary) { e.Hub, e.SelfServiceNamespace = nil, "shop" }, ""},
		{"id climbing out of the prefix", func(e *fleetv1alpha1.BackupSummary) { e.ID = "../../../other-prefix/x" }, "would not be under the location's prefix"},
		{"id with a slash", func(e *fleetv1alpha1.BackupSummary) { e.ID = "a/b" }, "not a backup ID"},
		{"id ..", func(e *fleetv1alpha1.BackupSummary) { e.ID = ".." }, "not a backup ID"},
		{"id upper case", func(e *fleetv1alpha1.BackupSummary) { e.ID = "ABC" }, "not a backup ID"},
		{"id too long", func(e *fleetv1alpha1.BackupSummary) { e.ID = backupv1alpha1.BackupID(make129()) }, "not a backup ID"},
		{"cluster with a slash", func(e *fleetv1alpha1.BackupSummary) { e.SourceCluster = "spoke/../x" }, "not a cluster name"},
		{"cluster empty", func(e *fleetv1alpha1.BackupSummary) { e.SourceCluster = "" }, "not a cluster name"},
		{"both owners", func(e *fleetv1alpha1.BackupSummary) { e.SelfServiceNamespace = "shop" }, "both"},
		{"no owner", func(e *fleetv1alpha1.BackupSummary) { e.Hub = nil }, "neither"},
		{"bad hub namespace", func(e *fleetv1alpha1.BackupSummary) { e.Hub.Namespace = "Team_A" }, "hub reference"},
		{"failed backup", func(e *fleetv1alpha1.BackupSummary) { e.Phase = backupv1alpha1.ApplicationBackupFailed }, "only complete backups"},
		{"negative items", func(e *fleetv1alpha1.BackupSummary) { e.Items = -1 }, "negative"},
		{"no completion time", func(e *fleetv1alpha1.BackupSummary) { e.CompletionTime = nil }, "completionTime"},
		{"completion in the future", func(e *fleetv1alpha1.BackupSummary) { e.CompletionTime = &future }, "in the future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			e := entry("spoke-1", "abc123")
			tc.mutate(&e)
			got := ValidateEntry(e)
			if tc.want == "" {
				g.Expect(got).To(BeEmpty())
			} else {
				g.Expect(got).To(ContainSubstring(tc.want))
			}
		})
	}
}

func make129() string {
	b := make([]byte, 129)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestLeaseNameIsPerAccountAndContainer(t *testing.T) {
	g := NewWithT(t)
	g.Expect(LeaseName("acct", "c1")).To(HavePrefix("lifeboat-sync-"))
	g.Expect(LeaseName("acct", "c1")).To(HaveLen(len("lifeboat-sync-") + 16))
	g.Expect(LeaseName("acct", "c1")).To(Equal(LeaseName("ACCT", "c1")), "account names are case-insensitive")
	g.Expect(LeaseName("acct", "c1")).NotTo(Equal(LeaseName("acct", "c2")))
	g.Expect(LeaseName("acct", "c1")).NotTo(Equal(LeaseName("acct2", "c1")))
}
