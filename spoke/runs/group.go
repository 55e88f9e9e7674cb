package runs

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStopping is the cause of the runs that the manager's end stopped.
var ErrStopping = errors.New("the spoke is stopping")

// Group is a reconciler's background runs. As a manager Runnable it stops
// them when the manager stops and waits until each has ended (and recorded
// its outcome). A run is counted from Reserve, before the status patch that
// marks it started, so a manager stopping between that patch and the run's
// start still waits for it.
type Group struct {
	mu      sync.Mutex
	ctx     context.Context
	stopAll context.CancelCauseFunc
	stopped bool
	wg      sync.WaitGroup
}

// Reservation is a run counted by its Group; exactly one of Go and Cancel
// ends it.
type Reservation struct {
	g    *Group
	once sync.Once
}

// Context ends with cause ErrStopping when the manager stops.
func (g *Group) Context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.context()
}

func (g *Group) context() context.Context {
	if g.ctx == nil {
		g.ctx, g.stopAll = context.WithCancelCause(context.Background())
	}
	return g.ctx
}

// Reserve counts a run that is about to start; ok is false once the manager
// stopped: nothing may start then.
func (g *Group) Reserve() (rv *Reservation, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, false
	}
	g.wg.Add(1)
	return &Reservation{g: g}, true
}

// Go runs fn in a goroutine; the reservation ends when fn returns.
func (rv *Reservation) Go(fn func()) {
	go func() {
		defer rv.done()
		fn()
	}()
}

// Cancel ends the reservation of a run that will not start.
func (rv *Reservation) Cancel() { rv.done() }

func (rv *Reservation) done() { rv.once.Do(rv.g.wg.Done) }

// Start implements manager.Runnable: when ctx ends it stops every run and
// waits for them all, including those reserved but not started yet.
func (g *Group) Start(ctx context.Context) error {
	<-ctx.Done()
	g.mu.Lock()
	g.stopped = true
	g.context()
	g.mu.Unlock()
	g.stopAll(ErrStopping)
	g.wg.Wait()
	return nil
}

// PatchContext is the context of the status patch that marks a reserved run
// started. The manager's stop does not cancel it: a patch that the API
// server applied while the reconcile's context ended would be taken for
// failed, the run would not start, and nothing would record its end.
func PatchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), patchTimeout)
}

// patchTimeout bounds a PatchContext.
const patchTimeout = 30 * time.Second

// Wait waits until every reserved run has ended (for tests).
func (g *Group) Wait() { g.wg.Wait() }
