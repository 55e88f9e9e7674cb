// Package pods waits for the pods the spoke creates (volume movers,
// PreBackupPods) to be ready, and says why one is not.
package pods

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
)

// WaitReady waits at most timeout until the pod namespace/name is ready and
// has an IP, and returns it. A pod that ended, or is not ready in time, is
// an error that says why (the last reason its containers or conditions gave).
func WaitReady(ctx context.Context, kube kubernetes.Interface, namespace, name string, timeout time.Duration) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not created yet"
	for {
		p, err := kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
			return nil, fmt.Errorf("the pod ended (%s): %s", p.Status.Phase, Describe(p))
		case p.Status.PodIP != "" && podexec.Ready(*p):
			return p, nil
		default:
			last = Describe(p)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not ready after %s: %s", timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Describe says in a line why a pod is not ready.
func Describe(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return w.Reason + ": " + w.Message
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("%s (exit code %d): %s", t.Reason, t.ExitCode, t.Message)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return string(c.Type) + ": " + c.Message
		}
	}
	return "phase " + string(p.Status.Phase)
}
