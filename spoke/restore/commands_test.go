package restore

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// The output of a PreBackupPod goes, once every object is written, to
// Options.RestoreCommand with the namespace it is restored into; outputs of
// namespaces the restore does not take are left out; an output that could
// not be given back, or a spoke that cannot, is an error in the log, so the
// restore is never a Success then.
func TestPreBackupPodOutputsGoToTheRestoreCommand(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	dump := archive.CommandOutput{Namespace: "pbr", Pod: "dump-x1", Container: "pg", File: "shop.sql", PreBackupPod: "dump",
		Snapshot: "k1", Repository: "lifeboat/v1/repositories/spoke-1/pbr/", Bytes: 7}
	other := dump
	other.Namespace, other.Repository = "pbr-other", "lifeboat/v1/repositories/spoke-1/pbr-other/"
	store, dir := writeBackupWith(t, []archive.Item{ns("pbr"), cm("pbr", "settings", map[string]string{"k": "v"}), ns("pbr-other")}, func(w *archive.Writer) {
		w.AddCommand(dump)
		w.AddCommand(other)
	})

	for _, tc := range []struct {
		name    string
		restore func(ctx context.Context, c archive.CommandOutput, namespace string) (string, error)
		errors  int64
		line    string
	}{
		{"restored", func(ctx context.Context, c archive.CommandOutput, namespace string) (string, error) {
			g.Expect(getJSON(t, ctx, rConfigMaps, namespace, "settings")).NotTo(BeNil(), "every object is written before")
			return "output: \"7 bytes read\"", nil
		}, 0, "The output of the backup command of PreBackupPod dump in namespace pbr (file shop.sql) (7 bytes, snapshot k1) was restored into namespace pbr-to-restored"},
		{"failed", func(context.Context, archive.CommandOutput, string) (string, error) {
			return "", errors.New("PreBackupPod pbr-to-failed/dump has no restoreCommand")
		}, 1, "The output of the backup command of PreBackupPod dump in namespace pbr (file shop.sql) was not restored into namespace pbr-to-failed: PreBackupPod pbr-to-failed/dump has no restoreCommand"},
		{"cannot", nil, 1, "The output of the backup command of PreBackupPod dump in namespace pbr (file shop.sql) was not restored: this spoke cannot restore it"},
	} {
		var log logLines
		opts := options(openBackup(t, store, dir), &log)
		to := "pbr-to-" + tc.name
		opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"pbr": backupv1alpha1.NamespaceName(to)}
		opts.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"pbr"}}
		var got []string
		if tc.restore != nil {
			opts.RestoreCommand = func(ctx context.Context, c archive.CommandOutput, namespace string) (string, error) {
				g.Expect(c).To(Equal(dump))
				got = append(got, namespace)
				return tc.restore(ctx, c, namespace)
			}
		}
		res, err := Run(ctx, opts)
		g.Expect(err).NotTo(HaveOccurred())
		if tc.restore != nil {
			g.Expect(got).To(Equal([]string{to}), "%s: only the selected namespace's output, where it is restored", tc.name)
		}
		g.Expect(res.Errors).To(Equal(tc.errors), "%s; log:\n%s", tc.name, &log)
		g.Expect(log.String()).To(ContainSubstring(tc.line), tc.name)
		g.Expect(log.String()).To(ContainSubstring("Left out: the output of the backup command of PreBackupPod dump in namespace pbr-other (file shop.sql): namespace pbr-other is not selected"))
	}
}
