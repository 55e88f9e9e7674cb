package podexec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// runScript runs streamScript with this machine's sh as the exec API would
// run it in a container, through a verifier; it returns the verifier's
// result and what the command wrote. edit, when not nil, changes the
// command before it starts (its user, its environment). A script that is
// not released within 30 s fails the test.
func runScript(t *testing.T, command []string, stdout io.Writer, edit func(*exec.Cmd)) (int64, error, string) {
	t.Helper()
	var stderr bytes.Buffer
	v := newVerifier("5eed", stdout, &stderr, 5*time.Second)
	cmd := exec.Command("sh", append([]string{"-c", streamScript, "lifeboat-stream", v.nonce}, command...)...)
	// The script's standard input is fed as the exec API feeds it: a copy
	// that ends when the verifier releases the script, and that nobody
	// waits for once the script has ended.
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = io.Copy(feed, v.stdin)
		feed.Close()
	}()
	defer v.release()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, drainAfterError{(*verifiedStdout)(v)}, drainAfterError{(*verifiedStderr)(v)}
	if edit != nil {
		edit(cmd)
	}
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		v.release()
		n, err := v.result(err)
		return n, err, stderr.String()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the script was not released within 30 s; standard error: %q", stderr.String())
		return 0, nil, ""
	}
}

// drainAfterError writes as client-go's exec streams do: once the writer
// fails, the rest of the stream is read and dropped.
type drainAfterError struct{ w io.Writer }

func (d drainAfterError) Write(p []byte) (int, error) {
	_, _ = d.w.Write(p)
	return len(p), nil
}

// The script passes the command's output through byte for byte, counts it,
// and ends with a trailer on standard error that the verifier takes out of
// what the command said.
func TestStreamScriptCountsTheOutput(t *testing.T) {
	g := NewWithT(t)
	var stdout bytes.Buffer
	n, err, stderr := runScript(t, []string{"sh", "-c", `echo "starting dump" >&2; yes lifeboat | head -c 3000001; echo done >&2`}, &stdout, nil)
	out := stdout.Bytes()
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
	var out bytes.Buffer
	_, err, stderr := runScript(t, []string{"sh", "-c", `echo "-- partial dump"; echo "pg_dump: error: connection to server failed" >&2; exit 3`}, &out, nil)
	var exit *exec.ExitError
	g.Expect(err).To(BeAssignableToTypeOf(exit))
	g.Expect(err.(*exec.ExitError).ExitCode()).To(Equal(3))
	g.Expect(out.String()).To(Equal("-- partial dump\n"))
	g.Expect(stderr).To(Equal("pg_dump: error: connection to server failed\n"))
}

// The script does not end once the command has: it waits until the spoke
// closes its standard input, which the spoke does once every byte arrived.
func TestStreamScriptWaitsUntilReleased(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	v := newVerifier("5eed", &stdout, &stderr, 0)
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
	g.Expect(v.trailer).To(Equal(&trailer{exitCode: 0, teeCode: 0, bytes: 4}))
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
	v := newVerifier("n0nce", &stdout, &stderr, 0)
	(*verifiedStdout)(v).Write([]byte("12345"))
	(*verifiedStderr)(v).Write([]byte("LIFEBOAT-END other rc=0 tee=0 bytes=5\n"))
	_, err := v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: the stream ended after 5 bytes without the command's end (the connection to the pod was cut)"))
	g.Expect(stderr.String()).To(Equal("LIFEBOAT-END other rc=0 tee=0 bytes=5\n"))

	(*verifiedStderr)(v).Write([]byte("warning: x\nLIFEBOAT-END n0"))
	g.Expect(stderr.String()).To(HaveSuffix("warning: x\n"), "the start of what may be the trailer is held back")
	(*verifiedStderr)(v).Write([]byte("nce bytes=9 rc=0 tee=0\n"))
	_, err = v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: 5 of its 9 bytes arrived"))
	g.Expect(stderr.String()).NotTo(ContainSubstring("n0nce"))

	(*verifiedStdout)(v).Write([]byte("6789"))
	n, err := v.result(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(9))

	for _, line := range []string{"LIFEBOAT-END n0nce rc=0 bytes=1", "LIFEBOAT-END n0nce rc=0 tee=0 bytes=-1", "LIFEBOAT-END n0nce rc=x tee=0 bytes=1", "xLIFEBOAT-END n0nce rc=0 tee=0 bytes=1", "LIFEBOAT-END n0nce rc=0 tee=0 bytes=1 x=2"} {
		_, ok := parseTrailer(line, "n0nce")
		g.Expect(ok).To(BeFalse(), line)
	}
}

// A container that runs as another user than the one that made the exec
// stream's pipes (containerd makes them as root, mode 0600) may not open
// them by name: the script streams all the same, tee writing through the
// descriptor it inherits. Here the test, as root, makes the pipes and the
// script runs as nobody.
func TestStreamScriptRunsAsAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the script as another user")
	}
	g := NewWithT(t)
	var out bytes.Buffer
	n, err, stderr := runScript(t, []string{"sh", "-c", `yes lifeboat | head -c 100000`}, &out, func(c *exec.Cmd) {
		c.Dir = "/"
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	})
	g.Expect(err).NotTo(HaveOccurred(), stderr)
	g.Expect(n).To(BeEquivalentTo(100000))
	g.Expect(out.Len()).To(Equal(100000))
	g.Expect(stderr).To(BeEmpty())
}

// A command whose standard error does not end in a newline (a progress
// line) has the trailer glued to its last line: it is found there all the
// same, and what came before it passed on.
func TestStreamScriptFindsTheTrailerAfterAnUnendedLine(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	n, err, stderr := runScript(t, []string{"sh", "-c", `printf 'dumping... 100%%' >&2; echo data`}, &out, nil)
	g.Expect(err).NotTo(HaveOccurred(), stderr)
	g.Expect(n).To(BeEquivalentTo(5))
	g.Expect(stderr).To(Equal("dumping... 100%"))

	// The same in one write, as buffering on the way may deliver it.
	var stdout, errOut bytes.Buffer
	v := newVerifier("5eed", &stdout, &errOut, 0)
	(*verifiedStdout)(v).Write([]byte("data\n"))
	(*verifiedStderr)(v).Write([]byte("dumping... 100%LIFEBOAT-END 5eed rc=0 tee=0 bytes=5\n"))
	_, err = v.result(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(errOut.String()).To(Equal("dumping... 100%"))
}

// When what takes the output fails (the upload gave up), the command is let
// go at once and the error says so; the script is not left waiting for a
// release that would never come.
func TestStreamScriptEndsWhenTheOutputCannotBeTaken(t *testing.T) {
	g := NewWithT(t)
	taken := 0
	failing := writerFunc(func(p []byte) (int, error) {
		if taken > 64<<10 {
			return 0, errors.New("the upload ended")
		}
		taken += len(p)
		return len(p), nil
	})
	_, err, _ := runScript(t, []string{"sh", "-c", `yes lifeboat | head -c 1000000`}, failing, nil)
	g.Expect(err).To(MatchError("the command's output could not be passed on: the upload ended"))
}

// A container without tee or wc cannot stream: the command does not run,
// and its standard error says what the container lacks.
func TestStreamScriptNeedsTeeAndWc(t *testing.T) {
	g := NewWithT(t)
	empty := "PATH=" + t.TempDir()
	probe := exec.Command("sh", "-c", "command -v tee")
	probe.Env = []string{empty}
	if probe.Run() == nil {
		t.Skip("this sh has tee built in (busybox)")
	}
	var out bytes.Buffer
	_, err, stderr := runScript(t, []string{"sh", "-c", "echo ran"}, &out, func(c *exec.Cmd) {
		c.Env = []string{empty}
	})
	var exit *exec.ExitError
	g.Expect(errors.As(err, &exit)).To(BeTrue(), "%v", err)
	g.Expect(exit.ExitCode()).To(Equal(127))
	g.Expect(out.String()).To(BeEmpty())
	g.Expect(stderr).To(Equal("lifeboat: the container needs tee and wc to stream a command's output\n"))
}

// Once the trailer is in, output that stops arriving short of its count
// (for the stall time) lets the command go, and the result says how much
// arrived; more output restarts the wait.
func TestVerifierGivesUpOnAStalledOutput(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	v := newVerifier("5eed", &stdout, &stderr, 300*time.Millisecond)
	released := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, v.stdin)
		close(released)
	}()
	(*verifiedStdout)(v).Write([]byte("123"))
	(*verifiedStderr)(v).Write([]byte("LIFEBOAT-END 5eed rc=0 tee=0 bytes=9\n"))
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		(*verifiedStdout)(v).Write([]byte("4"))
	}
	g.Expect(released).NotTo(BeClosed(), "output still arrives")
	g.Eventually(released, 5*time.Second).Should(BeClosed())
	_, err := v.result(nil)
	g.Expect(err).To(MatchError("the command's output did not arrive whole: 7 of its 9 bytes arrived, then nothing for 300ms after the command ended"))
}
