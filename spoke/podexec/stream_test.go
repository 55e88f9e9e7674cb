package podexec

import (
	"bytes"
	"crypto/sha256"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// runScript runs streamScript with this machine's sh as the exec API would
// run it in a container, through a verifier; it returns the verifier's
// result and what the command wrote.
func runScript(t *testing.T, command []string, beforeRelease func(*exec.Cmd)) (int64, error, []byte, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	v := newVerifier("5eed", &stdout, &stderr)
	cmd := exec.Command("sh", append([]string{"-c", streamScript, "lifeboat-stream", v.nonce}, command...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = v.stdin, (*verifiedStdout)(v), (*verifiedStderr)(v)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if beforeRelease != nil {
		beforeRelease(cmd)
	}
	err := cmd.Wait()
	v.release()
	n, err := v.result(err)
	return n, err, stdout.Bytes(), stderr.String()
}

// The script passes the command's output through byte for byte, counts it,
// and ends with a trailer on standard error that the verifier takes out of
// what the command said.
func TestStreamScriptCountsTheOutput(t *testing.T) {
	g := NewWithT(t)
	n, err, out, stderr := runScript(t, []string{"sh", "-c", `echo "starting dump" >&2; yes lifeboat | head -c 3000001; echo done >&2`}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(3000001))
	g.Expect(out).To(HaveLen(3000001))
	want := sha256.Sum256([]byte(strings.Repeat("lifeboat\n", 3000001/9+1)[:3000001]))
	g.Expect(sha256.Sum256(out)).To(Equal(want))
	g.Expect(stderr).To(Equal("starting dump\ndone\n"), "the trailer is not part of what the command said")
}

// A command that fails says so with its exit code, whatever it wrote; its
// standard error is passed on without the trailer.
func TestStreamScriptKeepsTheExitCode(t *testing.T) {
	g := NewWithT(t)
	_, err, out, stderr := runScript(t, []string{"sh", "-c", `echo "-- partial dump"; echo "pg_dump: error: connection to server failed" >&2; exit 3`}, nil)
	var exit *exec.ExitError
	g.Expect(err).To(BeAssignableToTypeOf(exit))
	g.Expect(err.(*exec.ExitError).ExitCode()).To(Equal(3))
	g.Expect(string(out)).To(Equal("-- partial dump\n"))
	g.Expect(stderr).To(Equal("pg_dump: error: connection to server failed\n"))
}

// The script does not end once the command has: it waits until the spoke
// closes its standard input, which the spoke does once every byte arrived.
func TestStreamScriptWaitsUntilReleased(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	v := newVerifier("5eed", &stdout, &stderr)
	// The verifier releases the script only when all output arrived: here it
	// never does (the trailer's count is raised on the way), so the test
	// releases it by hand after making sure it is still running.
	cmd := exec.Command("sh", "-c", streamScript, "lifeboat-stream", v.nonce, "echo", "hi")
	cmd.Stdin, cmd.Stdout = v.stdin, (*verifiedStdout)(v)
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		return (*verifiedStderr)(v).Write(bytes.Replace(p, []byte("bytes=3"), []byte("bytes=4"), 1))
	})
	g.Expect(cmd.Start()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	g.Consistently(done, time.Second).ShouldNot(Receive(), "the script waits for its standard input to close")
	v.mu.Lock()
	g.Expect(v.trailer).To(Equal(&trailer{exitCode: 0, bytes: 4}))
	v.mu.Unlock()
	v.release()
	g.Eventually(done, 10*time.Second).Should(Receive(BeNil()))
	_, err := v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: 3 of its 4 bytes arrived"))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// An output whose stream ends without the trailer, or with fewer bytes than
// it counted, is an error even though the exec API said the command
// succeeded; a trailer with another nonce (written by the command itself) is
// only text, and a trailer split over writes is still found.
func TestVerifierFindsWhatDidNotArrive(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	v := newVerifier("n0nce", &stdout, &stderr)
	(*verifiedStdout)(v).Write([]byte("12345"))
	(*verifiedStderr)(v).Write([]byte("LIFEBOAT-END other rc=0 bytes=5\n"))
	_, err := v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: the stream ended after 5 bytes without the command's end (the connection to the pod was cut)"))
	g.Expect(stderr.String()).To(Equal("LIFEBOAT-END other rc=0 bytes=5\n"))

	(*verifiedStderr)(v).Write([]byte("warning: x\nLIFEBOAT-END n0"))
	g.Expect(stderr.String()).To(HaveSuffix("warning: x\n"), "the start of what may be the trailer is held back")
	(*verifiedStderr)(v).Write([]byte("nce bytes=9 rc=0\n"))
	_, err = v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: 5 of its 9 bytes arrived"))
	g.Expect(stderr.String()).NotTo(ContainSubstring("n0nce"))

	(*verifiedStdout)(v).Write([]byte("6789"))
	n, err := v.result(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(9))

	for _, line := range []string{"LIFEBOAT-END n0nce rc=0", "LIFEBOAT-END n0nce rc=0 bytes=-1", "LIFEBOAT-END n0nce rc=x bytes=1", "xLIFEBOAT-END n0nce rc=0 bytes=1"} {
		_, ok := parseTrailer(line, "n0nce")
		g.Expect(ok).To(BeFalse(), line)
	}
}
