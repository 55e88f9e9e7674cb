package podexec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	utilexec "k8s.io/client-go/util/exec"
)

// streamScript runs a command whose standard output is data ("$@" after
// the nonce $1) so that none of it can be lost unseen. The exec API loses
// the end of a command's output when the command exits while its last
// megabytes are still buffered between the kubelet, the container runtime
// and the API server, and still reports success (kubernetes#124571; seen
// here whenever the reader is slower than the command). So the script
// counts the bytes the command wrote (tee, wc), says how many on standard
// error with its exit code and tee's in a trailer line that carries the
// nonce, and does not exit until the spoke closes its standard input, which
// the spoke does once it has received every byte. tee writes to the exec
// stream through a descriptor it inherits and opens only the pipe to wc,
// which the script made: a container that runs as another user than the
// runtime's may not open the exec stream's own pipes by name. The command's
// own standard input is /dev/null; it gets none of the descriptors the
// script uses.
const streamScript = `command -v tee >/dev/null && command -v wc >/dev/null ||
  { echo "lifeboat: the container needs tee and wc to stream a command's output" >&2; exit 127; }
n=$1; shift
exec 3>&1
r=$( { { "$@" </dev/null 3>&- 4>&-; echo "rc=$?" >&4; } | { tee /dev/fd/5 >&3 4>&-; echo "tee=$?" >&4; } 5>&1 | { c=$(wc -c); echo "bytes=${c##* }" >&4; }; } 4>&1 )
echo "` + trailerPrefix + `$n" $r >&2
while read -r _; do :; done
rc=1; for w in $r; do case $w in rc=*) rc=${w#rc=};; esac; done
exit $rc`

// ErrIncomplete is Stream's error when a command's output did not arrive
// whole.
var ErrIncomplete = errors.New("the command's output did not arrive whole")

// trailerPrefix starts the trailer line streamScript writes last on
// standard error.
const trailerPrefix = "LIFEBOAT-END "

// StallAfterEnd is how long Stream waits, once the command has ended, for
// more of its output when none arrives: the output then counts as
// incomplete.
const StallAfterEnd = time.Minute

// Stream runs command in the pod's container with its standard output
// written to stdout and its standard error to stderr, through streamScript,
// so the container needs sh, tee and wc. It returns the bytes of output.
// It is an error, naming what arrived, when the command exits non-zero (a
// k8s.io/client-go/util/exec.ExitError), when stdout fails, or when the
// output did not arrive whole: the stream ended before the command's
// trailer, with fewer bytes than the trailer counted, or nothing more
// arrived for StallAfterEnd after the trailer.
func Stream(ctx context.Context, config *rest.Config, pod corev1.Pod, container string, command []string, stdout, stderr io.Writer) (int64, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return 0, err
	}
	v := newVerifier(hex.EncodeToString(nonce), stdout, stderr, StallAfterEnd)
	defer v.release()
	argv := append([]string{"sh", "-c", streamScript, "lifeboat-stream", v.nonce}, command...)
	err := Exec(ctx, config, pod, container, argv, v.stdin, (*verifiedStdout)(v), (*verifiedStderr)(v))
	return v.result(err)
}

// verifier counts a streamed command's output, finds its trailer on
// standard error, and closes the command's standard input once every byte
// the trailer counted has arrived, once stdout failed, or once the output
// stalled after the trailer.
type verifier struct {
	nonce          string
	stdout, stderr io.Writer
	stdin          *io.PipeReader
	release        func()
	stall          time.Duration

	mu       sync.Mutex
	received int64
	held     []byte // the end of standard error that may be (the start of) the trailer
	trailer  *trailer
	writeErr error       // stdout's first error
	watchdog *time.Timer // releases after stall without output, once the trailer is in
	stalled  bool
}

// trailer is what streamScript said of the command.
type trailer struct {
	exitCode, teeCode int
	bytes             int64
}

func newVerifier(nonce string, stdout, stderr io.Writer, stall time.Duration) *verifier {
	pr, pw := io.Pipe()
	return &verifier{nonce: nonce, stdout: stdout, stderr: stderr, stdin: pr, stall: stall, release: sync.OnceFunc(func() { pw.Close() })}
}

// maxLine bounds a trailer line held back until its end shows; the trailer
// is far shorter.
const maxLine = 256

type verifiedStdout verifier

// Write passes the output on and counts what arrived. Once stdout fails the
// command may end: its output is lost anyway.
func (w *verifiedStdout) Write(p []byte) (int, error) {
	v := (*verifier)(w)
	n, err := v.stdout.Write(p)
	v.mu.Lock()
	v.received += int64(len(p))
	if err != nil && v.writeErr == nil {
		v.writeErr = err
	}
	if v.watchdog != nil {
		v.watchdog.Reset(v.stall)
	}
	v.mu.Unlock()
	if err != nil {
		v.release()
	}
	v.releaseWhenWhole()
	return n, err
}

type verifiedStderr verifier

// Write passes standard error on, except the trailer: what may be the start
// of the trailer, anywhere in a line, is held back until it shows whether
// it is.
func (w *verifiedStderr) Write(p []byte) (int, error) {
	v := (*verifier)(w)
	v.mu.Lock()
	v.held = append(v.held, p...)
	out := v.scan(false)
	v.mu.Unlock()
	v.releaseWhenWhole()
	if len(out) > 0 {
		if _, err := v.stderr.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// scan takes the trailer out of the standard error held back and returns
// what is to be passed on; at the end (final) it holds nothing back.
// v.mu is held.
func (v *verifier) scan(final bool) []byte {
	marker := []byte(trailerPrefix + v.nonce + " ")
	var out []byte
	for {
		i := bytes.Index(v.held, marker)
		if i < 0 {
			keep := 0
			if !final {
				keep = partialSuffix(v.held, marker)
			}
			out = append(out, v.held[:len(v.held)-keep]...)
			v.held = append([]byte(nil), v.held[len(v.held)-keep:]...)
			return out
		}
		out = append(out, v.held[:i]...)
		rest := v.held[i:]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			if final || len(rest) > maxLine {
				out = append(out, rest...)
				rest = nil
			}
			v.held = append([]byte(nil), rest...)
			return out
		}
		if t, ok := parseTrailer(string(rest[:end]), v.nonce); ok {
			v.trailer = &t
			if v.stall > 0 && v.watchdog == nil {
				v.watchdog = time.AfterFunc(v.stall, v.stallRelease)
			}
		} else {
			out = append(out, rest[:end+1]...)
		}
		v.held = rest[end+1:]
	}
}

// partialSuffix is the length of the longest end of b that starts marker.
func partialSuffix(b, marker []byte) int {
	for k := min(len(b), len(marker)-1); k > 0; k-- {
		if bytes.HasSuffix(b, marker[:k]) {
			return k
		}
	}
	return 0
}

// stallRelease lets the command end when its output stopped arriving after
// its trailer.
func (v *verifier) stallRelease() {
	v.mu.Lock()
	v.stalled = true
	v.mu.Unlock()
	v.release()
}

// releaseWhenWhole lets the command end once all its output has arrived.
func (v *verifier) releaseWhenWhole() {
	v.mu.Lock()
	whole := v.trailer != nil && v.received >= v.trailer.bytes
	v.mu.Unlock()
	if whole {
		v.release()
	}
}

// parseTrailer reads "LIFEBOAT-END <nonce> rc=<code> tee=<code>
// bytes=<count>" (the three fields in any order).
func parseTrailer(line, nonce string) (trailer, bool) {
	fields := strings.Fields(strings.TrimPrefix(line, trailerPrefix))
	if !strings.HasPrefix(line, trailerPrefix) || len(fields) != 4 || fields[0] != nonce {
		return trailer{}, false
	}
	t, seen := trailer{}, 0
	for _, f := range fields[1:] {
		k, val, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return trailer{}, false
		}
		switch k {
		case "rc":
			t.exitCode, seen = int(n), seen|1
		case "tee":
			t.teeCode, seen = int(n), seen|2
		case "bytes":
			t.bytes, seen = n, seen|4
		}
	}
	return t, seen == 7
}

// result is how the streamed command ended, given Exec's error.
func (v *verifier) result(err error) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.watchdog != nil {
		v.watchdog.Stop()
	}
	if rest := v.scan(true); len(rest) > 0 { // what was held back and was not the trailer
		_, _ = v.stderr.Write(rest)
	}
	switch {
	case v.writeErr != nil:
		return v.received, fmt.Errorf("the command's output could not be passed on: %w", v.writeErr)
	case err != nil:
		return v.received, err
	case v.trailer == nil:
		return v.received, fmt.Errorf("%w: the stream ended after %d bytes without the command's end (the connection to the pod was cut)", ErrIncomplete, v.received)
	case v.trailer.teeCode != 0:
		return v.received, fmt.Errorf("%w: tee in the container failed with exit code %d (its standard error says why)", ErrIncomplete, v.trailer.teeCode)
	case v.received != v.trailer.bytes && v.stalled:
		return v.received, fmt.Errorf("%w: %d of its %d bytes arrived, then nothing for %s after the command ended", ErrIncomplete, v.received, v.trailer.bytes, v.stall)
	case v.received != v.trailer.bytes:
		return v.received, fmt.Errorf("%w: %d of its %d bytes arrived", ErrIncomplete, v.received, v.trailer.bytes)
	case v.trailer.exitCode != 0:
		return v.received, utilexec.CodeExitError{Err: errors.New("the exec API reported success"), Code: v.trailer.exitCode}
	}
	return v.received, nil
}
