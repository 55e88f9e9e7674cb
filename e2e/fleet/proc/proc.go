// Package proc starts and stops the local fleet's server processes so that none
// outlives the fleet: each runs in its own process group, which Stop kills whole.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Process is a started server process.
type Process struct {
	Name    string
	LogFile string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// Start runs bin with args in its own process group; stdout and stderr go to
// logDir/name.log. The process is killed if the parent dies (Pdeathsig).
func Start(name, logDir, bin string, args []string, env ...string) (*Process, error) {
	return startEnv(name, logDir, bin, args, append(os.Environ(), env...))
}

// startEnv is Start with the whole environment given.
func startEnv(name, logDir, bin string, args, env []string) (*Process, error) {
	logFile := filepath.Join(logDir, name+".log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (and process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and waits.
func (p *Process) Stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	// Whatever the leader left in its group goes too.
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	return nil
}

// Args are the arguments the process was started with, without the binary.
func (p *Process) Args() []string { return append([]string(nil), p.cmd.Args[1:]...) }

// Restart stops the process (SIGTERM, SIGKILL after grace) and starts the same
// binary with the same arguments and environment, logging to the same file.
func (p *Process) Restart(grace time.Duration) (*Process, error) {
	if err := p.Stop(grace); err != nil {
		return nil, err
	}
	return p.startAgain()
}

// startAgain starts the same binary with the same arguments and environment
// as p, logging to the same file.
func (p *Process) startAgain() (*Process, error) {
	return startEnv(p.Name, filepath.Dir(p.LogFile), p.cmd.Path, p.Args(), p.cmd.Env)
}

// Kill sends SIGKILL to the process group and waits until the process has exited.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n bytes of the process log, for error messages.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.LogFile)
	if err != nil {
		return ""
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls check every 100ms until it returns nil, the process exits, or ctx ends.
func (p *Process) WaitFor(ctx context.Context, what string, check func() error) error {
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while waiting for %s: %v\n%s", p.Name, what, p.err, p.Tail(4000))
		case <-ctx.Done():
			return fmt.Errorf("%s: timed out waiting for %s: %w\n%s", p.Name, what, errors.Join(last, ctx.Err()), p.Tail(4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Itoa is strconv.Itoa, for building flags.
func Itoa(i int) string { return strconv.Itoa(i) }
