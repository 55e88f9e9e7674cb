package proc

import (
	"sync"
	"time"
)

// Supervised is a process that is started again, after a pause, whenever it
// exits, as a kubelet restarts a Deployment's container, until Stop. The
// fleet runs OCM's klusterlet agents this way: like many controllers they
// exit when their informers do not sync within 10 minutes, which is what
// happens to a cluster's agents while its ManagedCluster waits to be
// accepted, and in production their Deployment brings them back.
type Supervised struct {
	mu       sync.Mutex
	current  *Process
	restarts int
	stopOnce sync.Once
	stopping chan struct{}
	stopped  chan struct{}
}

// Supervise runs p under supervision: each time it exits it is started again
// with the same binary, arguments, environment and log file after pause.
func Supervise(p *Process, pause time.Duration) *Supervised {
	s := &Supervised{current: p, stopping: make(chan struct{}), stopped: make(chan struct{})}
	go s.run(pause)
	return s
}

func (s *Supervised) run(pause time.Duration) {
	defer close(s.stopped)
	for {
		p := s.Current()
		select {
		case <-s.stopping:
			return
		case <-p.Exited():
		}
		select {
		case <-s.stopping:
			return
		case <-time.After(pause):
		}
		next, err := p.startAgain()
		if err != nil {
			// p stays the exited process: the next turn waits pause and tries again.
			continue
		}
		s.mu.Lock()
		s.current = next
		s.restarts++
		s.mu.Unlock()
	}
}

// Current is the process running now (or the last one, if it has exited and
// not been started again yet).
func (s *Supervised) Current() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Restarts is how often the process was started again.
func (s *Supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Stop ends the supervision and stops the current process (SIGTERM, SIGKILL
// after grace).
func (s *Supervised) Stop(grace time.Duration) error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stopping) })
	<-s.stopped
	return s.Current().Stop(grace)
}
