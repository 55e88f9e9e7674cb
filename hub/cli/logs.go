package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func logsBackupCommand() *command  { return logsCommand(backupv1alpha1.RunBackup) }
func logsRestoreCommand() *command { return logsCommand(backupv1alpha1.RunRestore) }

// logsCommand prints the log of a backup or restore. The log is in the
// bucket, which the hub cannot read: the command creates a RunLog, which
// the hub answers through a cluster that can read the bucket, prints what
// it fetched and deletes it.
func logsCommand(kind backupv1alpha1.RunKind) *command {
	var limit string
	var timeout time.Duration
	word := map[backupv1alpha1.RunKind]string{backupv1alpha1.RunBackup: "backup", backupv1alpha1.RunRestore: "restore"}[kind]
	return &command{
		use:     "logs " + word + " NAME",
		short:   fmt.Sprintf("Print the log of a %s (its end, at most --limit-bytes), fetched from the bucket through a cluster", word),
		example: fmt.Sprintf("lifeboat logs %s NAME -n team-a --limit-bytes 64Ki", word),
		args:    1,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&limit, "limit-bytes", "256Ki", "print at most this much of the log's end (at most 1Mi)")
			fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the log")
		},
		run: func(ctx context.Context, s *session, args []string) error {
			q, err := resource.ParseQuantity(limit)
			if err != nil || q.Value() < 1 || q.Value() > backupv1alpha1.MaxRunLogBytes {
				return usagef("--limit-bytes %q: want a size from 1 to 1Mi, such as 64Ki", limit)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			rl := &fleetv1alpha1.RunLog{
				ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace(), GenerateName: "logs-"},
				Spec:       fleetv1alpha1.RunLogSpec{Kind: kind, Name: backupv1alpha1.ObjectName(args[0]), MaxBytes: int32(q.Value())},
			}
			if err := c.Create(ctx, rl); err != nil {
				return apiError(err, "a RunLog in namespace "+s.namespace())
			}
			defer func() { _ = c.Delete(context.WithoutCancel(ctx), rl) }()
			what := objectName(word, rl.Namespace, args[0])
			err = wait.PollUntilContextTimeout(ctx, s.pollInterval(), timeout, true, func(ctx context.Context) (bool, error) {
				if err := c.Get(ctx, client.ObjectKeyFromObject(rl), rl); err != nil {
					return false, apiError(err, "the RunLog of "+what)
				}
				return rl.Status.Phase == backupv1alpha1.TaskCompleted || rl.Status.Phase == backupv1alpha1.TaskFailed, nil
			})
			if wait.Interrupted(err) {
				return &exitError{code: ExitTimeout, msg: fmt.Sprintf("gave up waiting for the log of %s after %s%s", what, timeout, readyNote(rl))}
			}
			if err != nil {
				return err
			}
			return printRunLog(s.out(), s, rl, what)
		},
	}
}

func printRunLog(w io.Writer, s *session, rl *fleetv1alpha1.RunLog, what string) error {
	if rl.Status.Phase == backupv1alpha1.TaskFailed {
		return fmt.Errorf("no log of %s%s", what, readyNote(rl))
	}
	if rl.Status.Truncated {
		s.note("the log of %s has %d bytes; these are its last %d (see --limit-bytes)", what, rl.Status.SizeBytes, len(rl.Status.Text))
	}
	_, err := io.WriteString(w, rl.Status.Text)
	return err
}

// readyNote is ": <Ready message>" of rl, or "" without one.
func readyNote(rl *fleetv1alpha1.RunLog) string {
	if c := meta.FindStatusCondition(rl.Status.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Message != "" {
		return ": " + c.Message
	}
	return ""
}
