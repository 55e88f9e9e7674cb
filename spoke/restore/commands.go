package restore

import (
	"context"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// restoreCommands gives the output of each backup command of a pod's
// annotation back, once every object is written (the workloads that take
// it must run): only outputs of namespaces the restore restores, as its
// selection, OnlyNamespace and Tenancy allow (backup.json is not trusted to
// name others), into the namespace they are mapped to. An output that
// could not be given back is an error in the log: the restore is not a
// Success. Outputs of PreBackupPods are not restored here.
func (r *run) restoreCommands(ctx context.Context) {
	for _, c := range r.opts.Reader.Manifest().Commands {
		if ctx.Err() != nil {
			return
		}
		if c.PreBackupPod != "" {
			continue
		}
		ns := r.mapNamespace(c.Namespace)
		what := commandWhat(c)
		switch {
		case !r.sel.takesNamespace(c.Namespace):
			r.log(archive.LevelInfo, nil, "Left out: the output of the backup command of %s: namespace %s is not selected", what, c.Namespace)
			continue
		case r.opts.OnlyNamespace != "" && ns != r.opts.OnlyNamespace:
			r.log(archive.LevelWarning, nil, "Left out: the output of the backup command of %s: it would go to namespace %s, and a restore in namespace %s may write only there", what, ns, r.opts.OnlyNamespace)
			continue
		case r.opts.Tenancy != nil && !r.opts.Tenancy.AllowsNamespace(ns):
			r.log(archive.LevelWarning, nil, "Left out: the output of the backup command of %s: it would go to namespace %s, and the hub tenant may not restore into it", what, ns)
			continue
		case r.opts.RestoreCommand == nil:
			r.log(archive.LevelError, nil, "The output of the backup command of %s was not restored: this spoke cannot restore it", what)
			continue
		}
		said, err := r.opts.RestoreCommand(ctx, c, ns)
		if err != nil {
			r.log(archive.LevelError, nil, "The output of the backup command of %s was not restored into namespace %s: %v", what, ns, err)
			continue
		}
		r.log(archive.LevelInfo, nil, "The output of the backup command of %s (%d bytes, snapshot %s) was restored into namespace %s by its restore command; %s",
			what, c.Bytes, c.Snapshot, ns, said)
	}
}

// commandWhat names a backup command's output, e.g. "Deployment/db in
// namespace shop (file db.sql)".
func commandWhat(c archive.CommandOutput) string {
	by := c.Owner
	if by == "" {
		by = "pod " + c.Pod
	}
	return by + " in namespace " + c.Namespace + " (file " + c.File + ")"
}
