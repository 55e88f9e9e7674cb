package applicationbackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// CommandSource is a backup command (K8up's methods 2 and 3): Command runs
// in Container of Pod, and its standard output, as File, is the backup.
type CommandSource struct {
	Pod       corev1.Pod
	Container string
	Command   []string
	// File is the output's file name: a plain name (archive.ValidateCommandFile).
	File string
	// Owner is the pod's top controller as "<Kind>/<name>", or "" for a bare pod.
	Owner string
	// PreBackupPod names the PreBackupPod that Pod was made from; "" for a
	// pod's backup-command annotation.
	PreBackupPod string
}

func (s CommandSource) String() string {
	what := fmt.Sprintf("pod %s/%s", s.Pod.Namespace, s.Pod.Name)
	switch {
	case s.PreBackupPod != "" && s.Pod.Name == "": // its pod not made (yet)
		what = fmt.Sprintf("PreBackupPod %s/%s", s.Pod.Namespace, s.PreBackupPod)
	case s.PreBackupPod != "":
		what = fmt.Sprintf("PreBackupPod %s/%s (%s)", s.Pod.Namespace, s.PreBackupPod, what)
	case s.Owner != "":
		what += " of " + s.Owner
	}
	return what + " file " + s.File
}

// source is where the output's snapshots are in the namespace's repository:
// commands/<Kind>/<name>/<file>, by the pod's top controller, its
// PreBackupPod, or the pod itself, so that each run's output of the same
// workload is the next snapshot of the same source.
func (s CommandSource) source() string {
	by := s.Owner
	switch {
	case s.PreBackupPod != "":
		by = "PreBackupPod/" + s.PreBackupPod
	case by == "":
		by = "Pod/" + s.Pod.Name
	}
	return "commands/" + by + "/" + s.File
}

// SkippedCommand is a backup command whose output is not in the backup, and why.
type SkippedCommand struct {
	CommandSource
	// Reason completes "output not backed up: ", e.g. "exit code 3".
	Reason string
}

// maxStderr bounds a command's standard error kept for the backup's log.
const maxStderr = 4 << 10

// BackUpCommands implements VolumeMover: each source's command runs through
// the exec API as b.Exec's identity, its standard output streamed into the
// kopia repository of the pod's namespace (never held in memory) and
// recorded in backup.json; its standard error goes to the backup's log,
// bounded. A command that exits non-zero, or whose output could not be
// stored, is skipped with its reason and leaves nothing in backup.json.
func (k *KopiaVolumes) BackUpCommands(ctx context.Context, b VolumeBackup, sources []CommandSource) ([]SkippedCommand, error) {
	repos, err := k.repositories(ctx, b)
	if err != nil {
		return skipCommands(sources, err.Error()), nil
	}
	defer repos.close(context.WithoutCancel(ctx))
	var skipped []SkippedCommand
	var done int64
	for _, s := range sources {
		if ctx.Err() != nil {
			skipped = append(skipped, SkippedCommand{CommandSource: s, Reason: "the backup was stopped"})
			continue
		}
		rep, err := repos.get(ctx, s.Pod.Namespace)
		if err != nil {
			skipped = append(skipped, SkippedCommand{CommandSource: s, Reason: err.Error()})
			continue
		}
		out, err := k.runCommand(ctx, b, rep, s, func(n int64) { b.Progress(done + n) })
		if err != nil {
			skipped = append(skipped, SkippedCommand{CommandSource: s, Reason: err.Error()})
			continue
		}
		done += out.Bytes
		b.Progress(done)
		b.Writer.AddCommand(out)
	}
	return skipped, nil
}

// runCommand runs one command with its standard output piped into a
// snapshot.
func (k *KopiaVolumes) runCommand(ctx context.Context, b VolumeBackup, rep *volumes.Repository, s CommandSource, progress func(int64)) (archive.CommandOutput, error) {
	stderr := podexec.NewOutput(maxStderr)
	pr, pw := io.Pipe()
	ran := make(chan error, 1)
	go func() {
		_, err := podexec.Stream(ctx, b.Exec, s.Pod, s.Container, s.Command, pw, stderr)
		pw.CloseWithError(err) // an error, or EOF: no snapshot unless the command exited 0 and all its output arrived
		ran <- err
	}()
	snap, err := rep.BackupStream(ctx, volumes.Source(k.Cluster, s.Pod.Namespace, s.source()), s.File, pr, progress)
	pr.CloseWithError(errStored) // unblocks the command if the upload gave up
	execErr := <-ran

	// One info line for the record; a failure gets its warning from the caller.
	end := "exit code 0"
	var failure error
	switch {
	case err != nil && (execErr == nil || errors.Is(execErr, errStored)): // the upload failed first
		failure = fmt.Errorf("storing its output: %v", err)
	case execErr != nil:
		failure = errors.New(describeExec(execErr))
	}
	if failure != nil {
		end = failure.Error()
	}
	msg := fmt.Sprintf("Backup command %q in %s, container %s: %s", strings.Join(s.Command, " "), s, s.Container, end)
	if failure == nil {
		msg += fmt.Sprintf("; its output, %d bytes, backed up as snapshot %s", snap.Bytes, snap.ID)
	}
	b.Writer.Log(archive.LevelInfo, nil, msg+fmt.Sprintf("; standard error%s: %q", stderr.Describe(), stderr.String()))
	if failure != nil {
		if excerpt := stderr.Excerpt(maxExcerpt); excerpt != "" {
			failure = fmt.Errorf("%v (standard error: %q)", failure, excerpt)
		}
		return archive.CommandOutput{}, failure
	}
	return archive.CommandOutput{Namespace: s.Pod.Namespace, Pod: s.Pod.Name, Owner: s.Owner, Container: s.Container,
		File: s.File, PreBackupPod: s.PreBackupPod, Snapshot: snap.ID, Repository: snap.Repository, Bytes: snap.Bytes}, nil
}

// errStored closes a command's output pipe once the upload is over.
var errStored = errors.New("the output's upload ended")

// maxExcerpt bounds the standard error a failure's message quotes, in status.
const maxExcerpt = 200

// describeExec says how a command that did not succeed ended.
func describeExec(err error) string {
	var exit utilexec.ExitError
	switch {
	case errors.As(err, &exit):
		return fmt.Sprintf("exit code %d", exit.ExitStatus())
	case errors.Is(err, podexec.ErrIncomplete):
		return err.Error()
	}
	return "could not be run: " + err.Error()
}

func skipCommands(sources []CommandSource, reason string) []SkippedCommand {
	out := make([]SkippedCommand, len(sources))
	for i, s := range sources {
		out[i] = SkippedCommand{CommandSource: s, Reason: reason}
	}
	return out
}

// describeSkippedCommands says, for the status, whose command output is not
// in the backup, e.g. "the output of 1 backup command not backed up: pod
// shop/db-0 of StatefulSet/db file db.sql (exit code 3)".
func describeSkippedCommands(skipped []SkippedCommand) string {
	names := make([]string, 0, len(skipped))
	for _, s := range skipped {
		names = append(names, fmt.Sprintf("%s (%s)", s.CommandSource, s.Reason))
	}
	slices.Sort(names)
	more := ""
	if len(names) > maxNamedClaims {
		more = fmt.Sprintf(" and %d more (the backup's log names them)", len(names)-maxNamedClaims)
		names = names[:maxNamedClaims]
	}
	what := "command"
	if len(skipped) != 1 {
		what += "s"
	}
	return fmt.Sprintf("the output of %d backup %s not backed up: %s%s", len(skipped), what, strings.Join(names, "; "), more)
}
