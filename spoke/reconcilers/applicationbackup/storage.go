package applicationbackup

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// watchedStore is a run's store. It counts the bytes uploaded, and notes
// whether a request is in flight and when the storage service last moved,
// so that the status can say that the run waits for storage.
type watchedStore struct {
	archive.Store
	n        atomic.Int64 // bytes uploaded
	inflight atomic.Int32
	moved    atomic.Int64 // unix nanoseconds
}

func newWatchedStore(s archive.Store) *watchedStore {
	w := &watchedStore{Store: s}
	w.touch()
	return w
}

func (s *watchedStore) touch() { s.moved.Store(time.Now().UnixNano()) }

func (s *watchedStore) begin() {
	s.inflight.Add(1)
	s.touch()
}

func (s *watchedStore) end() {
	s.touch()
	s.inflight.Add(-1)
}

// waiting is how long a request in flight has not moved; 0 when none is in flight.
func (s *watchedStore) waiting(now time.Time) time.Duration {
	if s.inflight.Load() == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, s.moved.Load()))
}

func (s *watchedStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	s.begin()
	defer s.end()
	return s.Store.Put(ctx, name, &watchedReader{r: r, s: s})
}

// Get counts as in flight until the caller closes what it returns.
func (s *watchedStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.begin()
	rc, err := s.Store.Get(ctx, name)
	if err != nil {
		s.end()
		return nil, err
	}
	return &watchedBody{ReadCloser: rc, s: s}, nil
}

func (s *watchedStore) List(ctx context.Context, prefix string) ([]string, error) {
	s.begin()
	defer s.end()
	return s.Store.List(ctx, prefix)
}

func (s *watchedStore) Delete(ctx context.Context, name string) error {
	s.begin()
	defer s.end()
	return s.Store.Delete(ctx, name)
}

// watchedReader is what an upload reads: each read counts and moves.
type watchedReader struct {
	r io.Reader
	s *watchedStore
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
	s    *watchedStore
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
