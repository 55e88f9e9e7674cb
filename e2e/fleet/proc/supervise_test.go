package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A supervised process that exits is started again, with the same arguments
// and log file, until Stop; after Stop it stays stopped.
func TestSuperviseRestartsUntilStopped(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("exits", dir, "/bin/sh", []string{"-c", "echo started; sleep 0.2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	s := Supervise(p, 50*time.Millisecond)
	logFile := filepath.Join(dir, "exits.log")
	starts := func() int {
		log, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(log), "started\n")
	}
	// Three processes wrote to the one log: the first and two restarts.
	deadline := time.Now().Add(20 * time.Second)
	for starts() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the log shows %d starts after 20s (%d restarts), want 3", starts(), s.Restarts())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := s.Restarts()
	select {
	case <-s.Current().Exited():
	default:
		t.Fatal("the current process still runs after Stop")
	}
	time.Sleep(500 * time.Millisecond)
	if s.Restarts() != stopped {
		t.Fatalf("started again after Stop: %d restarts, then %d", stopped, s.Restarts())
	}
	// Every process started wrote its line, except perhaps the last one,
	// which Stop may have ended before its echo ran.
	if n := starts(); n != stopped+1 && n != stopped {
		t.Fatalf("the log shows %d starts after %d restarts, want %d or %d", n, stopped, stopped, stopped+1)
	}
}

// Stop ends a supervised process that is running, and a second Stop is a no-op.
func TestSuperviseStopsARunningProcess(t *testing.T) {
	p, err := Start("sleeps", t.TempDir(), "/bin/sh", []string{"-c", "sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	s := Supervise(p, 10*time.Millisecond)
	if err := s.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("the process still runs after Stop")
	}
	if s.Restarts() != 0 {
		t.Fatalf("a stopped process was started again (%d)", s.Restarts())
	}
	if err := s.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
}
