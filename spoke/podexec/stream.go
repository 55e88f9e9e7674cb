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
// error with its exit code in a trailer line that carries the nonce, and
// does not exit until the spoke closes its standard input, which the spoke
// does once it has received every byte. The command's own standard input
// is /dev/null; it gets none of the descriptors the script uses.
const streamScript = `command -v tee >/dev/null && command -v wc >/dev/null ||
  { echo "lifeboat: the container needs tee and wc to stream a command's output" >&2; exit 127; }
n=$1; shift
exec 3>&1
r=$( { { "$@" </dev/null 3>&- 4>&-; echo "rc=$?" >&4; } | tee /dev/fd/3 | { c=$(wc -c); echo "bytes=${c##* }" >&4; }; } 4>&1 )
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

// Stream runs command in the pod's container with its standard output
// written to stdout and its standard error to stderr, through streamScript,
// so the container needs sh, tee and wc. It returns the bytes of output.
// It is an error, naming what arrived, when the command exits non-zero (a
// k8s.io/client-go/util/exec.ExitError), or when the output did not arrive
// whole: the stream ended before the command's trailer, or with fewer bytes
// than the trailer counted.
func Stream(ctx context.Context, config *rest.Config, pod corev1.Pod, container string, command []string, stdout, stderr io.Writer) (int64, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return 0, err
	}
	v := newVerifier(hex.EncodeToString(nonce), stdout, stderr)
	defer v.release()
	argv := append([]string{"sh", "-c", streamScript, "lifeboat-stream", v.nonce}, command...)
	err := Exec(ctx, config, pod, container, argv, v.stdin, (*verifiedStdout)(v), (*verifiedStderr)(v))
	return v.result(err)
}

// verifier counts a streamed command's output, finds its trailer on
// standard error, and closes the command's standard input once every byte
// the trailer counted has arrived.
type verifier struct {
	nonce          string
	stdout, stderr io.Writer
	stdin          *io.PipeReader
	release        func()

	mu       sync.Mutex
	received int64
	line     []byte // the start of a standard error line that may be the trailer
	trailer  *trailer
}

// trailer is what streamScript said of the command.
type trailer struct {
	exitCode int
	bytes    int64
}

func newVerifier(nonce string, stdout, stderr io.Writer) *verifier {
	pr, pw := io.Pipe()
	return &verifier{nonce: nonce, stdout: stdout, stderr: stderr, stdin: pr, release: sync.OnceFunc(func() { pw.Close() })}
}

// maxLine bounds a standard error line held back as it may be the
// trailer, which is far shorter.
const maxLine = 256

type verifiedStdout verifier

func (w *verifiedStdout) Write(p []byte) (int, error) {
	v := (*verifier)(w)
	n, err := v.stdout.Write(p)
	v.mu.Lock()
	v.received += int64(n)
	v.mu.Unlock()
	v.releaseWhenWhole()
	return n, err
}

type verifiedStderr verifier

// Write passes standard error on, except the trailer line: the start of a
// line that may be the trailer is held back until its end shows.
func (w *verifiedStderr) Write(p []byte) (int, error) {
	v := (*verifier)(w)
	v.mu.Lock()
	var out []byte
	for rest := p; len(rest) > 0; {
		segment, ended := rest, false
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			segment, ended, rest = rest[:i+1], true, rest[i+1:]
		} else {
			rest = nil
		}
		line := append(v.line, segment...)
		v.line = nil
		text := strings.TrimSuffix(string(line), "\n")
		switch {
		case !v.mayBeTrailer(text) || len(line) > maxLine:
			out = append(out, line...)
		case !ended:
			v.line = line
		default:
			if t, ok := parseTrailer(text, v.nonce); ok {
				v.trailer = &t
			} else {
				out = append(out, line...)
			}
		}
	}
	v.mu.Unlock()
	v.releaseWhenWhole()
	if len(out) > 0 {
		if _, err := v.stderr.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// mayBeTrailer says whether a line starting with text may be the trailer.
func (v *verifier) mayBeTrailer(text string) bool {
	start := trailerPrefix + v.nonce + " "
	return strings.HasPrefix(start, text) || strings.HasPrefix(text, start)
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

// parseTrailer reads "LIFEBOAT-END <nonce> rc=<code> bytes=<count>" (the
// two fields in any order).
func parseTrailer(line, nonce string) (trailer, bool) {
	fields := strings.Fields(strings.TrimPrefix(line, trailerPrefix))
	if !strings.HasPrefix(line, trailerPrefix) || len(fields) != 3 || fields[0] != nonce {
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
		case "bytes":
			t.bytes, seen = n, seen|2
		}
	}
	return t, seen == 3
}

// result is how the streamed command ended, given Exec's error.
func (v *verifier) result(err error) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.line) > 0 { // a last line that was not the trailer
		_, _ = v.stderr.Write(v.line)
		v.line = nil
	}
	switch {
	case err != nil:
		return v.received, err
	case v.trailer == nil:
		return v.received, fmt.Errorf("%w: the stream ended after %d bytes without the command's end (the connection to the pod was cut)", ErrIncomplete, v.received)
	case v.received != v.trailer.bytes:
		return v.received, fmt.Errorf("%w: %d of its %d bytes arrived", ErrIncomplete, v.received, v.trailer.bytes)
	case v.trailer.exitCode != 0:
		return v.received, utilexec.CodeExitError{Err: errors.New("the exec API reported success"), Code: v.trailer.exitCode}
	}
	return v.received, nil
}
