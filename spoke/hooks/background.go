package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
)

// backgroundRun is a background action running in one pod: it holds, e.g., a
// freeze while the following stages run, and ends when its standard input
// closes.
type backgroundRun struct {
	stage   backupv1alpha1.BackupStage
	index   int
	action  backupv1alpha1.ExecAction
	pod     corev1.Pod
	started time.Time
	stdin   *io.PipeWriter
	out     *podexec.Output
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // once done is closed
	// expired: the action's timeout passed before StopBackground.
	expired bool
}

// startGrace is how long a background action is watched, once it holds, for
// a failure that fails its stage at once.
const startGrace = 2 * time.Second

// holdWait is how long the stages wait for a background action's first
// output, its sign that it holds (say, a lock), before they go on without it.
const holdWait = 30 * time.Second

// firstOutput passes writes on to w and closes held at the first byte.
type firstOutput struct {
	w    io.Writer
	once sync.Once
	held chan struct{}
}

func (f *firstOutput) Write(p []byte) (int, error) {
	if len(p) > 0 {
		f.once.Do(func() { close(f.held) })
	}
	return f.w.Write(p)
}

// startBackground starts a background action in one pod and returns at once;
// it fails only if the action cannot be started.
func (r *Runner) startBackground(ctx context.Context, stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction, pod corev1.Pod) error {
	// Detached from the run's cancellation: StopBackground ends it in order,
	// after the stages it guards, also when the run is being stopped.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout(a))
	stdinR, stdinW := io.Pipe()
	b := &backgroundRun{stage: stage, index: i, action: a, pod: pod, started: time.Now(), stdin: stdinW,
		out: podexec.NewOutput(MaxOutput), cancel: cancel, done: make(chan struct{})}
	out := &firstOutput{w: b.out, held: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = r.exec(actx, pod, container(a, pod), a.Command, stdinR, out)
		b.expired = errors.Is(actx.Err(), context.DeadlineExceeded)
		stdinR.Close()
	}()
	r.mu.Lock()
	r.background = append(r.background, b)
	r.mu.Unlock()
	// The stages wait until the command says it holds by writing its first
	// output: under load an exec can take seconds to start.
	select {
	case <-out.held:
	case <-b.done:
	case <-time.After(min(holdWait, timeout(a))):
		r.log(archive.LevelWarning, fmt.Sprintf("background pre action %s in pod %s/%s wrote nothing within %s: the backup goes on without knowing that it holds",
			a.NameAt(i), pod.Namespace, pod.Name, min(holdWait, timeout(a))))
	}
	// A command that cannot start, or fails at once (say, a freeze that is
	// refused), fails the stage now rather than after the backup.
	select {
	case <-b.done:
		if _, f := exitCode(b.err, timeout(a)); f != "" {
			return errors.New(f)
		}
	case <-time.After(startGrace):
	}
	return nil
}

// StopBackground ends the background actions, last started first: it closes
// their standard input and waits for them to exit. An action that had already
// failed, ran out of its timeout before this, or does not end within 30s of
// its input closing has failed. The results are per action.
func (r *Runner) StopBackground() []Result {
	r.mu.Lock()
	runs := r.background
	r.background = nil
	r.mu.Unlock()

	failures := map[string][]string{}
	var order []string
	actions := map[string]backupv1alpha1.ExecAction{}
	indexes := map[string]int{}
	stages := map[string]backupv1alpha1.BackupStage{}
	pods := map[string]int{}
	for k := len(runs) - 1; k >= 0; k-- {
		b := runs[k]
		name := b.action.NameAt(b.index)
		if _, seen := actions[name]; !seen {
			order = append(order, name)
			actions[name], indexes[name], stages[name] = b.action, b.index, b.stage
		}
		pods[name]++
		if err := r.stop(b); err != nil {
			failures[name] = append(failures[name], fmt.Sprintf("pod %s/%s: %v", b.pod.Namespace, b.pod.Name, err))
		}
	}
	var out []Result
	for _, name := range order {
		if f := failures[name]; len(f) > 0 {
			out = append(out, r.fail(stages[name], indexes[name], actions[name], pods[name], strings.Join(f, "; ")))
			continue
		}
		out = append(out, result(stages[name], indexes[name], actions[name], backupv1alpha1.ExecSucceeded, pods[name], ""))
	}
	return out
}

// stop ends one background run and logs how it ended.
func (r *Runner) stop(b *backgroundRun) error {
	defer b.cancel()
	early := false
	select {
	case <-b.done:
		early = true
	default:
	}
	b.stdin.Close()
	select {
	case <-b.done:
	case <-time.After(stopGrace):
		b.cancel()
		<-b.done
		err := failure(fmt.Sprintf("did not end within %s of its standard input closing (the exec stream was closed)", stopGrace))
		r.record(b.stage, b.index, b.action, b.pod, 0, b.started, b.out, err)
		return err
	}
	if b.expired {
		err := failure(fmt.Sprintf("ran out of its timeout of %s before the backup finished the stages it guards", timeout(b.action)))
		r.record(b.stage, b.index, b.action, b.pod, 0, b.started, b.out, err)
		return err
	}
	err := r.record(b.stage, b.index, b.action, b.pod, 0, b.started, b.out, b.err)
	if err == nil && early {
		r.log(archive.LevelInfo, fmt.Sprintf("background %s action %s in pod %s/%s had ended before the backup finished the stages it guards", stageWord(b.stage), b.action.NameAt(b.index), b.pod.Namespace, b.pod.Name))
	}
	return err
}
