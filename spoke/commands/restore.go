package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	utilexec "k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// PodWait bounds how long a restore waits for the pod that takes a backup
// command's output back.
const PodWait = 5 * time.Minute

// maxOutput bounds a restore command's output kept for the restore's log.
const maxOutput = 4 << 10

// RestorePod waits, up to PodWait, for a running, ready pod in namespace
// with a restore-command annotation that belongs to owner (a top
// controller, TopOwner), or for owner "" is named pod; the first by name.
// c reads as the restore writes.
func RestorePod(ctx context.Context, c client.Reader, namespace, owner, pod string) (corev1.Pod, error) {
	var found corev1.Pod
	var last error
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, PodWait, true, func(ctx context.Context) (bool, error) {
		list := &corev1.PodList{}
		if last = c.List(ctx, list, client.InNamespace(namespace)); last != nil {
			return false, nil
		}
		slices.SortFunc(list.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
		for _, p := range list.Items {
			if _, ok := p.Annotations[backupv1alpha1.RestoreCommandAnnotation]; !ok ||
				p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || !podexec.Ready(p) {
				continue
			}
			if owner == "" {
				if p.Name == pod {
					found = p
					return true, nil
				}
				continue
			}
			top, err := TopOwner(ctx, c, p)
			if err != nil {
				last = err
				return false, nil
			}
			if top == owner {
				found = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		what := "pod " + namespace + "/" + pod
		if owner != "" {
			what = "pod of " + owner + " in namespace " + namespace
		}
		msg := fmt.Sprintf("no running, ready %s with annotation %s within %s", what, backupv1alpha1.RestoreCommandAnnotation, PodWait)
		if last != nil {
			msg += fmt.Sprintf(" (last error: %v)", last)
		}
		if ctx.Err() != nil {
			msg = "the restore was stopped while it waited for a " + what
		}
		return corev1.Pod{}, errors.New(msg)
	}
	return found, nil
}

// RestoreOutput runs command in the pod's container as config's identity
// with the backup command's output out, read from rep, as its standard
// input (streamed, never held in memory). It returns what the command
// wrote, bounded, for the log; a command that exits non-zero, or an output
// that cannot be read whole, is an error.
func RestoreOutput(ctx context.Context, config *rest.Config, rep *volumes.Repository, pod corev1.Pod, container string, command []string, out archive.CommandOutput) (string, error) {
	rd, err := rep.OpenFile(ctx, out.Snapshot)
	if err != nil {
		return "", err
	}
	defer rd.Close()
	counted := &countingReader{r: rd}
	output := podexec.NewOutput(maxOutput)
	err = podexec.Exec(ctx, config, pod, container, command, counted, output, output)
	said := fmt.Sprintf("output%s: %q", output.Describe(), output.String())
	var exit utilexec.ExitError
	switch {
	case errors.As(err, &exit):
		return said, fmt.Errorf("the restore command exited with code %d (output: %q)", exit.ExitStatus(), output.Excerpt(200))
	case err != nil:
		return said, fmt.Errorf("the restore command could not be run: %v", err)
	case counted.err != nil:
		return said, fmt.Errorf("reading snapshot %s: %v", out.Snapshot, counted.err)
	case counted.n != out.Bytes:
		return said, fmt.Errorf("the restore command took %d of the %d bytes of snapshot %s before it exited", counted.n, out.Bytes, out.Snapshot)
	}
	return said, nil
}

// countingReader counts the bytes read and keeps a read error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}
