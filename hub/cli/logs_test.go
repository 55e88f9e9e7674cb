package cli

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// answerRunLogs plays the hub manager for the RunLogs created in ns: it
// finishes each with what answer sets, and records what was asked.
func answerRunLogs(t *testing.T, ns string, answer func(*fleetv1alpha1.RunLog)) <-chan fleetv1alpha1.RunLogSpec {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	asked := make(chan fleetv1alpha1.RunLogSpec, 10)
	go func() {
		done := map[string]bool{}
		for ctx.Err() == nil {
			list := &fleetv1alpha1.RunLogList{}
			_ = hub.Client.List(ctx, list, client.InNamespace(ns))
			for i := range list.Items {
				rl := &list.Items[i]
				if done[rl.Name] {
					continue
				}
				done[rl.Name] = true
				asked <- rl.Spec
				answer(rl)
				if err := hub.Client.Status().Update(ctx, rl); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return asked
}

func TestLogsPrintsTheFetchedLogAndDeletesTheRequest(t *testing.T) {
	ns := namespace(t, "logs-a")
	asked := answerRunLogs(t, ns, func(rl *fleetv1alpha1.RunLog) {
		switch rl.Spec.Name {
		case "gone":
			rl.Status.Phase = backupv1alpha1.TaskFailed
			rl.Status.Conditions = []metav1.Condition{cond(fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonBackupNotFound, `Restore "gone" does not exist in namespace logs-a`)}
		default:
			rl.Status.Phase, rl.Status.Cluster = backupv1alpha1.TaskCompleted, "spoke-1"
			rl.Status.Text = `{"level":"info","message":"created","result":"created","kind":"ConfigMap","name":"a"}` + "\n"
			rl.Status.Truncated, rl.Status.SizeBytes = true, 9000
		}
	})

	r := run(t, "logs", "restore", "back", "-n", ns, "--limit-bytes", "64Ki")
	expectCode(t, r, ExitOK, "these are its last")
	expectContains(t, r.out, `"result":"created"`)
	spec := <-asked
	if spec.Kind != backupv1alpha1.RunRestore || spec.Name != "back" || spec.MaxBytes != 64<<10 {
		t.Errorf("asked for %+v", spec)
	}

	r = run(t, "logs", "restore", "gone", "-n", ns)
	expectCode(t, r, ExitError, `no log of restore "gone" in namespace "logs-a"`, "does not exist")
	if spec := <-asked; spec.MaxBytes != backupv1alpha1.DefaultRunLogBytes {
		t.Errorf("default limit: %d", spec.MaxBytes)
	}

	r = run(t, "logs", "backup", "nightly", "-n", ns, "--limit-bytes", "2Mi")
	expectCode(t, r, ExitUsage, "--limit-bytes")

	// The requests are deleted once printed.
	list := &fleetv1alpha1.RunLogList{}
	if err := hub.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil || len(list.Items) != 0 {
		t.Errorf("RunLogs left: %d (%v)", len(list.Items), err)
	}
}
