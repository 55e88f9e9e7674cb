// Package archivetest has archive Stores for tests of the code that uses them.
package archivetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// PanickingStore is a Store that panics, as a storage client with a bug
// would, in the calls Panics selects; the others go to Store.
type PanickingStore struct {
	archive.Store
	// Panics reports whether the call op ("Put", "Get", "List" or "Delete")
	// of name panics.
	Panics func(op, name string) bool
}

// PanicMessage starts the value of every panic of a PanickingStore.
const PanicMessage = "the storage client broke"

func (s *PanickingStore) check(op, name string) {
	if s.Panics(op, name) {
		panic(PanicMessage + ": " + op + " " + name)
	}
}

func (s *PanickingStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	s.check("Put", name)
	return s.Store.Put(ctx, name, r)
}

func (s *PanickingStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.check("Get", name)
	return s.Store.Get(ctx, name)
}

func (s *PanickingStore) List(ctx context.Context, prefix string) ([]string, error) {
	s.check("List", prefix)
	return s.Store.List(ctx, prefix)
}

// Walk panics as List does: both list.
func (s *PanickingStore) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	s.check("List", prefix)
	return s.Store.Walk(ctx, prefix, fn)
}

func (s *PanickingStore) Delete(ctx context.Context, name string) error {
	s.check("Delete", name)
	return s.Store.Delete(ctx, name)
}

// FailingStore is a Store whose calls that Fails selects fail as a storage
// service that answers with an error does, with StorageFailure; the others
// go to Store.
type FailingStore struct {
	archive.Store
	// Fails reports whether the call op ("Put", "Get", "List" or "Delete";
	// Walk is "List") of name fails.
	Fails func(op, name string) bool
}

// StorageFailure is the error of every failing call of a FailingStore.
var StorageFailure = errors.New("the storage service answered HTTP 503 Service Unavailable")

func (s *FailingStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	if s.Fails("Put", name) {
		return 0, StorageFailure
	}
	return s.Store.Put(ctx, name, r)
}

func (s *FailingStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if s.Fails("Get", name) {
		return nil, StorageFailure
	}
	return s.Store.Get(ctx, name)
}

func (s *FailingStore) List(ctx context.Context, prefix string) ([]string, error) {
	if s.Fails("List", prefix) {
		return nil, StorageFailure
	}
	return s.Store.List(ctx, prefix)
}

func (s *FailingStore) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	if s.Fails("List", prefix) {
		return StorageFailure
	}
	return s.Store.Walk(ctx, prefix, fn)
}

func (s *FailingStore) Delete(ctx context.Context, name string) error {
	if s.Fails("Delete", name) {
		return StorageFailure
	}
	return s.Store.Delete(ctx, name)
}

// ManifestSHA256 is the sha256 (hex) of the backup.json in folder dir of
// store, as the hub records it.
func ManifestSHA256(ctx context.Context, store archive.Store, dir string) (string, error) {
	rc, err := store.Get(ctx, dir+"/"+archive.ManifestFile)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
