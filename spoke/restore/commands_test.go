package restore

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// The output of a pod's backup command is handed back, after every object
// is written, into the namespace it is mapped to; only outputs of the
// namespaces the restore restores are (backup.json is not trusted to name
// others). One that cannot be given back is an error: the restore is not a
// Success.
func TestCommandOutputsGoBackAfterTheObjects(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	dump := archive.CommandOutput{Namespace: "co", Pod: "db-0", Owner: "StatefulSet/db", Container: "db", File: "db.sql",
		Snapshot: "k01", Repository: "lifeboat/v1/repositories/spoke-1/co/", Bytes: 42}
	other := dump
	other.Namespace, other.Snapshot, other.Repository = "co-other", "k02", "lifeboat/v1/repositories/spoke-1/co-other/"
	fromPod := dump
	fromPod.PreBackupPod, fromPod.Snapshot = "dumper", "k03"
	store, dir := writeBackupWith(t, []archive.Item{ns("co"), ns("co-other"), cm("co", "settings", nil), cm("co-other", "settings", nil)},
		func(w *archive.Writer) {
			for _, c := range []archive.CommandOutput{dump, other, fromPod} {
				w.AddCommand(c)
			}
		})

	for _, tc := range []struct {
		name    string
		to      string
		command func(context.Context, archive.CommandOutput, string) (string, error)
		errors  string // the error line, if the output is not given back
	}{
		{name: "given back", to: "co-restored", command: func(context.Context, archive.CommandOutput, string) (string, error) { return "output (0 bytes)", nil }},
		{name: "the command fails", to: "co-failed", command: func(context.Context, archive.CommandOutput, string) (string, error) {
			return "", errors.New("the restore command exited with code 3")
		}, errors: "The output of the backup command of StatefulSet/db in namespace co (file db.sql) was not restored into namespace co-failed: the restore command exited with code 3"},
		{name: "this spoke cannot", to: "co-cannot",
			errors: "The output of the backup command of StatefulSet/db in namespace co (file db.sql) was not restored: this spoke cannot restore it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logLines
			opts := options(openBackup(t, store, dir), &log)
			opts.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"co"}}
			opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"co": backupv1alpha1.NamespaceName(tc.to)}
			var calls []string
			if tc.command != nil {
				opts.RestoreCommand = func(ctx context.Context, c archive.CommandOutput, namespace string) (string, error) {
					g.Expect(getJSON(t, ctx, rConfigMaps, namespace, "settings")).NotTo(BeNil(), "the objects are written first")
					calls = append(calls, c.Snapshot+" -> "+namespace)
					return tc.command(ctx, c, namespace)
				}
			}
			res, err := Run(ctx, opts)
			g.Expect(err).NotTo(HaveOccurred())
			if tc.command != nil {
				g.Expect(calls).To(Equal([]string{"k01 -> " + tc.to}), "only the annotation output of the restored namespace; log:\n%s", &log)
			}
			if tc.errors == "" {
				g.Expect(res.Errors).To(BeZero(), "log:\n%s", &log)
				g.Expect(log.String()).To(ContainSubstring("The output of the backup command of StatefulSet/db in namespace co (file db.sql) (42 bytes, snapshot k01) was restored into namespace " + tc.to))
			} else {
				g.Expect(res.Errors).To(Equal(int64(1)), "log:\n%s", &log)
				g.Expect(log.String()).To(ContainSubstring(tc.errors))
			}
		})
	}
}
