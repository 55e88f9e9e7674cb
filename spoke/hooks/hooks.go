// Package hooks runs a backup's exec actions in application pods through the
// Kubernetes exec API.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	utilexec "k8s.io/client-go/util/exec"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
)

// MaxOutput bounds the output of an action kept for the log, per pod: the
// first MaxOutput bytes of stdout and stderr together.
const MaxOutput = 4 << 10

const (
	// DefaultTimeout is an action's timeout when its spec has none.
	DefaultTimeout = 30 * time.Second
	// stopGrace is how long a background action may take to end once its
	// standard input is closed.
	stopGrace = 30 * time.Second
	// retryDelay is the pause before an action is tried again.
	retryDelay = time.Second
)

// Scope is the namespaces a backup's actions may run in: the namespaces it
// backs up. With Namespaces empty, every namespace but Excluded (a backup of
// the whole cluster by the cluster's admin).
type Scope struct {
	Namespaces []string
	Excluded   []string
}

// Allows says whether the scope takes namespace ns.
func (s Scope) Allows(ns string) bool {
	if len(s.Namespaces) > 0 {
		return slices.Contains(s.Namespaces, ns)
	}
	return !slices.Contains(s.Excluded, ns)
}

func (s Scope) String() string {
	if len(s.Namespaces) > 0 {
		return "namespaces " + strings.Join(s.Namespaces, ", ")
	}
	return "the namespaces backed up"
}

// Logger receives one line per action and pod for the backup's log.
type Logger func(level archive.Level, message string)

// Runner runs the actions of one backup.
type Runner struct {
	config *rest.Config
	client kubernetes.Interface
	scope  Scope
	log    Logger

	mu         sync.Mutex
	background []*backgroundRun
}

// NewRunner runs actions as config's identity, only in pods of scope.
func NewRunner(config *rest.Config, scope Scope, log Logger) (*Runner, error) {
	c, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &Runner{config: config, client: c, scope: scope, log: log}, nil
}

// Result is how one action went, and whether it fails the backup.
type Result struct {
	backupv1alpha1.ExecResult
	// Fatal: the action failed and its onError is Fail.
	Fatal bool
}

// Failed says whether the action failed.
func (r Result) Failed() bool { return r.Outcome == backupv1alpha1.ExecFailed }

// Pre runs the pre actions in order and stops at the first that fails with
// onError Fail. Background actions keep running until StopBackground.
func (r *Runner) Pre(ctx context.Context, actions []backupv1alpha1.ExecAction) []Result {
	var out []Result
	for i, a := range actions {
		res := r.run(ctx, backupv1alpha1.StagePreExecRule, i, a)
		out = append(out, res)
		if res.Fatal {
			for j := i + 1; j < len(actions); j++ {
				out = append(out, result(backupv1alpha1.StagePreExecRule, j, actions[j], backupv1alpha1.ExecSkipped, 0,
					fmt.Sprintf("not run: pre action %s failed before it", res.Name)))
			}
			break
		}
	}
	return out
}

// Post runs every post action its executionPolicy allows, in order, even after
// one fails: what the pre actions froze must be thawed. failedBefore says
// whether a pre action or the resources failed.
func (r *Runner) Post(ctx context.Context, actions []backupv1alpha1.ExecAction, failedBefore bool) []Result {
	var out []Result
	for i, a := range actions {
		policy := a.ExecutionPolicy
		if policy == "" {
			policy = backupv1alpha1.ExecAlways
		}
		if (policy == backupv1alpha1.ExecOnSuccess && failedBefore) || (policy == backupv1alpha1.ExecOnFailure && !failedBefore) {
			why := "executionPolicy OnFailure and nothing failed before it"
			if failedBefore {
				why = "executionPolicy OnSuccess and the backup failed before it"
			}
			res := result(backupv1alpha1.StagePostExecRule, i, a, backupv1alpha1.ExecSkipped, 0, "not run: "+why)
			r.log(archive.LevelInfo, fmt.Sprintf("post action %s was not run: %s", res.Name, why))
			out = append(out, res)
			continue
		}
		out = append(out, r.run(ctx, backupv1alpha1.StagePostExecRule, i, a))
	}
	return out
}

// run runs one action in the pods it selects.
func (r *Runner) run(ctx context.Context, stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction) Result {
	pods, err := r.pods(ctx, a)
	if err != nil {
		return r.fail(stage, i, a, 0, err.Error())
	}
	var failures []string
	for _, pod := range pods {
		if a.Background {
			if err := r.startBackground(ctx, stage, i, a, pod); err != nil {
				failures = append(failures, fmt.Sprintf("pod %s/%s: %v", pod.Namespace, pod.Name, err))
			}
			continue
		}
		if err := r.runInPod(ctx, stage, i, a, pod); err != nil {
			failures = append(failures, fmt.Sprintf("pod %s/%s: %v", pod.Namespace, pod.Name, err))
		}
	}
	if len(failures) > 0 {
		return r.fail(stage, i, a, len(pods), strings.Join(failures, "; "))
	}
	return result(stage, i, a, backupv1alpha1.ExecSucceeded, len(pods), "")
}

// runInPod runs a foreground action in one pod, tried maxRetry more times
// if it fails.
func (r *Runner) runInPod(ctx context.Context, stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction, pod corev1.Pod) error {
	var err error
	for try := 0; try <= int(a.MaxRetry); try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(retryDelay):
			}
		}
		actx, cancel := context.WithTimeout(ctx, timeout(a))
		out := podexec.NewOutput(MaxOutput)
		started := time.Now()
		err = r.exec(actx, pod, container(a, pod), a.Command, nil, out)
		cancel()
		err = r.record(stage, i, a, pod, try, started, out, err)
		if err == nil {
			return nil
		}
	}
	return err
}

// record logs how one try in one pod ended and says, as an error, how it failed.
func (r *Runner) record(stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction, pod corev1.Pod, try int, started time.Time, out *podexec.Output, err error) error {
	took := time.Since(started).Round(time.Millisecond)
	what := fmt.Sprintf("%s action %s in pod %s/%s container %s", stageWord(stage), a.NameAt(i), pod.Namespace, pod.Name, container(a, pod))
	if try > 0 {
		what += fmt.Sprintf(" (retry %d of %d)", try, a.MaxRetry)
	}
	code, failure := exitCode(err, timeout(a))
	level := archive.LevelInfo
	if failure != "" {
		level = archive.LevelWarning
	}
	r.log(level, fmt.Sprintf("%s: %s after %s; output%s: %q", what, describeEnd(code, failure), took, out.Describe(), out.String()))
	if failure == "" {
		return nil
	}
	if excerpt := out.Excerpt(maxExcerpt); excerpt != "" {
		failure += fmt.Sprintf(" (output: %q)", excerpt)
	}
	return errors.New(failure)
}

// maxExcerpt bounds the output a failure's message quotes, in status.
const maxExcerpt = 200

func describeEnd(code int, failure string) string {
	if failure != "" {
		return failure
	}
	return fmt.Sprintf("exit code %d", code)
}

// exitCode reads how an exec ended: its exit code, and a failure for anything
// but exit code 0.
func exitCode(err error, limit time.Duration) (int, string) {
	var exit utilexec.ExitError
	var f failure
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &f):
		return -1, string(f)
	case errors.As(err, &exit):
		return exit.ExitStatus(), fmt.Sprintf("exit code %d", exit.ExitStatus())
	case errors.Is(err, context.DeadlineExceeded):
		return -1, fmt.Sprintf("did not end within its timeout of %s (the exec stream was closed; a command that ignores that may still run in the container)", limit)
	}
	return -1, "could not be run: " + err.Error()
}

// failure is an action's failure described in full.
type failure string

func (f failure) Error() string { return string(f) }

// exec runs command in the pod's container, its output into out.
func (r *Runner) exec(ctx context.Context, pod corev1.Pod, container string, command []string, stdin io.Reader, out io.Writer) error {
	return podexec.Exec(ctx, r.config, pod, container, command, stdin, out, out)
}

// pods are the running pods of the scope that the action selects: all of
// them, or for pods: One the first ready one by namespace and name. None is
// an error.
func (r *Runner) pods(ctx context.Context, a backupv1alpha1.ExecAction) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(&a.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("podSelector: %v", err)
	}
	namespaces := r.scope.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var pods []corev1.Pod
	for _, ns := range namespaces {
		list, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("listing pods: %v", err)
		}
		for _, p := range list.Items {
			if r.scope.Allows(p.Namespace) && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running pod in %s matches podSelector %q", r.scope, sel.String())
	}
	slices.SortFunc(pods, func(x, y corev1.Pod) int {
		if c := compareBool(podexec.Ready(y), podexec.Ready(x)); c != 0 {
			return c
		}
		return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name)
	})
	if a.Pods == backupv1alpha1.ExecInOnePod {
		pods = pods[:1]
	}
	for _, p := range pods {
		if c := container(a, p); !slices.ContainsFunc(p.Spec.Containers, func(x corev1.Container) bool { return x.Name == c }) {
			return nil, fmt.Errorf("pod %s/%s has no container %s", p.Namespace, p.Name, c)
		}
	}
	return pods, nil
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// fail logs an action that failed as a whole and returns its result.
func (r *Runner) fail(stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction, pods int, why string) Result {
	res := result(stage, i, a, backupv1alpha1.ExecFailed, pods, why)
	res.Fatal = onError(a) == backupv1alpha1.ExecErrorFail
	r.log(archive.LevelWarning, fmt.Sprintf("%s action %s failed (onError %s): %s", stageWord(stage), res.Name, onError(a), why))
	return res
}

func result(stage backupv1alpha1.BackupStage, i int, a backupv1alpha1.ExecAction, outcome backupv1alpha1.ExecOutcome, pods int, msg string) Result {
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	return Result{ExecResult: backupv1alpha1.ExecResult{Stage: stage, Name: a.NameAt(i), Outcome: outcome, Pods: int32(pods), Message: msg}}
}

func stageWord(stage backupv1alpha1.BackupStage) string {
	if stage == backupv1alpha1.StagePostExecRule {
		return "post"
	}
	return "pre"
}

func onError(a backupv1alpha1.ExecAction) backupv1alpha1.ExecErrorPolicy {
	if a.OnError == "" {
		return backupv1alpha1.ExecErrorFail
	}
	return a.OnError
}

func timeout(a backupv1alpha1.ExecAction) time.Duration {
	if a.Timeout == nil || a.Timeout.Duration <= 0 {
		return DefaultTimeout
	}
	return a.Timeout.Duration
}

func container(a backupv1alpha1.ExecAction, pod corev1.Pod) string {
	if a.Container != "" || len(pod.Spec.Containers) == 0 {
		return a.Container
	}
	return pod.Spec.Containers[0].Name
}
