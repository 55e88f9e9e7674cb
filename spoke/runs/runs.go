// Package runs tracks the backups that run in this spoke process, so that a
// second reconcile never starts a duplicate and a forced deletion can abort one.
package runs

import (
	"context"
	"errors"
	"sync"
)

// ErrAborted is the cause of a run that a forced deletion stopped.
var ErrAborted = errors.New("aborted: the backup's data is being deleted with force")

// Registry is the set of runs of this process, keyed by source cluster and backup ID.
type Registry struct {
	mu   sync.Mutex
	runs map[string]*run
}

type run struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Key identifies a backup's data.
func Key(cluster, backupID string) string { return cluster + "/" + backupID }

// Start registers a run for key. It returns a context that ends when the run
// is aborted (context.Cause says why) and a finish function the run must call
// when it ends; ok is false when key is already running.
func (r *Registry) Start(parent context.Context, key string) (ctx context.Context, finish func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs == nil {
		r.runs = map[string]*run{}
	}
	if _, running := r.runs[key]; running {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancelCause(parent)
	rn := &run{cancel: cancel, done: make(chan struct{})}
	r.runs[key] = rn
	return ctx, func() {
		r.mu.Lock()
		delete(r.runs, key)
		r.mu.Unlock()
		cancel(nil)
		close(rn.done)
	}, true
}

// Running reports whether key is running in this process.
func (r *Registry) Running(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.runs[key]
	return ok
}

// Abort stops the run of key, if any, with cause ErrAborted and waits until it
// has finished or ctx ends.
func (r *Registry) Abort(ctx context.Context, key string) error {
	r.mu.Lock()
	rn, ok := r.runs[key]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	rn.cancel(ErrAborted)
	select {
	case <-rn.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
