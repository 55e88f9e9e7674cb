package targets

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// StorageWait is how long a storage request may not move before a run's
// status says that it waits for the storage service.
const StorageWait = 10 * time.Second

// WatchedStore is a backup's or restore's store. It counts the bytes
// uploaded, and notes whether a request is in flight and when the storage
// service last moved, so that the status can say that the run waits for
// storage.
type WatchedStore struct {
	archive.Store
	n        atomic.Int64 // bytes uploaded
	inflight atomic.Int32
	moved    atomic.Int64 // unix nanoseconds
}

// NewWatchedStore watches s.
func NewWatchedStore(s archive.Store) *WatchedStore {
	w := &WatchedStore{Store: s}
	w.touch()
	return w
}

func (s *WatchedStore) touch() { s.moved.Store(time.Now().UnixNano()) }

func (s *WatchedStore) begin() {
	s.inflight.Add(1)
	s.touch()
}

func (s *WatchedStore) end() {
	s.touch()
	s.inflight.Add(-1)
}

// Uploaded is the number of bytes uploaded so far.
func (s *WatchedStore) Uploaded() int64 { return s.n.Load() }

// Waiting is how long a request in flight has not moved; 0 when none is in flight.
func (s *WatchedStore) Waiting(now time.Time) time.Duration {
	if s.inflight.Load() == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, s.moved.Load()))
}

// Stalled says, once a request has not moved for wait (StorageWait when 0),
// that a run (kind "backup" or "restore") waits for the storage service of
// BackupTarget target; detail says where the run is.
func (s *WatchedStore) Stalled(now time.Time, wait time.Duration, target, kind, detail string) (string, bool) {
	if wait <= 0 {
		wait = StorageWait
	}
	waited := s.Waiting(now)
	if waited < wait {
		return "", false
	}
	return fmt.Sprintf("waiting for the storage service of BackupTarget %s: it has not answered for %s (%s); the %s goes on when it does, or fails with StorageError",
		target, waited.Truncate(time.Second), detail, kind), true
}

func (s *WatchedStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	s.begin()
	defer s.end()
	return s.Store.Put(ctx, name, &watchedReader{r: r, s: s})
}

// Get counts as in flight until the caller closes what it returns.
func (s *WatchedStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.begin()
	rc, err := s.Store.Get(ctx, name)
	if err != nil {
		s.end()
		return nil, err
	}
	return &watchedBody{ReadCloser: rc, s: s}, nil
}

func (s *WatchedStore) List(ctx context.Context, prefix string) ([]string, error) {
	s.begin()
	defer s.end()
	return s.Store.List(ctx, prefix)
}

func (s *WatchedStore) Delete(ctx context.Context, name string) error {
	s.begin()
	defer s.end()
	return s.Store.Delete(ctx, name)
}

// watchedReader is what an upload reads: each read counts and moves.
type watchedReader struct {
	r io.Reader
	s *WatchedStore
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.s.n.Add(int64(n))
		w.s.touch()
	}
	return n, err
}

// watchedBody is a download: each read moves; closing ends the request.
type watchedBody struct {
	io.ReadCloser
	s    *WatchedStore
	once sync.Once
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.s.touch()
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.once.Do(b.s.end)
	return b.ReadCloser.Close()
}
