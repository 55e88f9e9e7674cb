package targets

import (
	"context"
	"errors"
	"io"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Revalidation lets a backup, restore, sync or deletion that failed on
// storage ask for its BackupTarget to be validated again at once, instead of
// the target showing Valid (on this cluster and, through it, on the hub) until
// its next validation, up to an hour later. A nil Revalidation ignores
// requests.
type Revalidation struct {
	mu     sync.Mutex
	due    map[string]bool
	events chan event.GenericEvent
}

// NewRevalidation makes a Revalidation for the BackupTarget controller.
func NewRevalidation() *Revalidation {
	return &Revalidation{due: map[string]bool{}, events: make(chan event.GenericEvent, 64)}
}

// Request asks for target to be validated again. It never blocks: while
// earlier requests wait, the target is marked due and validated when the
// controller next looks at it.
func (v *Revalidation) Request(target string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.due[target] = true
	v.mu.Unlock()
	select {
	case v.events <- event.GenericEvent{Object: &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Name: target}}}:
	default:
	}
}

// Take reports whether target was asked to be validated again, and forgets
// the request.
func (v *Revalidation) Take(target string) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	due := v.due[target]
	delete(v.due, target)
	return due
}

// Source makes the BackupTarget controller reconcile the targets asked for.
func (v *Revalidation) Source() source.Source {
	return source.Channel(v.events, &handler.EnqueueRequestForObject{})
}

// Watch returns store, which asks for target to be validated again whenever
// one of its requests fails, for work that retries what failed on storage
// (syncs and deletions) rather than ending with StorageError. A missing
// name, a canceled context and an error of the caller's Walk function are
// not storage failures. A nil Revalidation returns store itself.
func (v *Revalidation) Watch(store archive.Store, target string) archive.Store {
	if v == nil {
		return store
	}
	return &revalidatingStore{Store: store, v: v, target: target}
}

// Open opens target t's storage with open, or with f.Client when open is nil
// (tests swap it), and watches it (Watch).
func (v *Revalidation) Open(f *Factory, open func(*backupv1alpha1.BackupTarget) (archive.Store, error), t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	var store archive.Store
	var err error
	if open != nil {
		store, err = open(t)
	} else {
		store, err = f.Client(t)
	}
	if err != nil {
		return nil, err
	}
	return v.Watch(store, t.Name), nil
}

type revalidatingStore struct {
	archive.Store
	v      *Revalidation
	target string
}

func (s *revalidatingStore) check(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && !errors.Is(err, archive.ErrNotFound) {
		s.v.Request(s.target)
	}
	return err
}

func (s *revalidatingStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	n, err := s.Store.Put(ctx, name, r)
	return n, s.check(ctx, err)
}

func (s *revalidatingStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, name)
	return rc, s.check(ctx, err)
}

func (s *revalidatingStore) List(ctx context.Context, prefix string) ([]string, error) {
	names, err := s.Store.List(ctx, prefix)
	return names, s.check(ctx, err)
}

func (s *revalidatingStore) Walk(ctx context.Context, prefix string, fn func(names []string) error) error {
	var fnErr error
	err := s.Store.Walk(ctx, prefix, func(names []string) error {
		fnErr = fn(names)
		return fnErr
	})
	if fnErr != nil {
		return err
	}
	return s.check(ctx, err)
}

func (s *revalidatingStore) Delete(ctx context.Context, name string) error {
	return s.check(ctx, s.Store.Delete(ctx, name))
}
