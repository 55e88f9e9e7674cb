// Package podexec runs a command in a pod's container through the
// Kubernetes exec API.
package podexec

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Exec runs command in the pod's container as config's identity: over
// WebSocket, or SPDY from API servers that do not upgrade to it (as kubectl
// does). stdin, when not nil, is the command's standard input; stdout and
// stderr take its output (the same writer may take both). A command that
// exits non-zero returns a k8s.io/client-go/util/exec.ExitError.
func Exec(ctx context.Context, config *rest.Config, pod corev1.Pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   command,
			Stdin:     stdin != nil,
			Stdout:    stdout != nil,
			Stderr:    stderr != nil,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(config, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(config, "POST", req.URL())
	if err != nil {
		return err
	}
	executor, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// NewOutput keeps the first max bytes.
func NewOutput(max int) *Output { return &Output{max: max} }

// Output keeps the first bytes a command writes, for a log, and counts the
// rest; the command's stream is never cut short.
type Output struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

func (b *Output) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(len(p), b.max-len(b.buf))
	b.buf = append(b.buf, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	return len(p), nil
}

func (b *Output) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Excerpt is the last n bytes kept, where a failing command usually says why.
func (b *Output) Excerpt(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.ToValidUTF8(string(b.buf[max(0, len(b.buf)-n):]), "")
}

// Describe says how many bytes were kept, of how many, e.g. " (first 4096
// of 10240 bytes)".
func (b *Output) Describe() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return fmt.Sprintf(" (%d bytes)", len(b.buf))
	}
	return fmt.Sprintf(" (first %d of %d bytes)", len(b.buf), int64(len(b.buf))+b.dropped)
}

// Ready says whether the pod's Ready condition is true.
func Ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
