package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/uuid"
	kblob "github.com/kopia/kopia/repo/blob"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// Blobs is what a repository needs of a target's storage: *blob.Client.
type Blobs interface {
	UploadBuffered(ctx context.Context, name string, r io.ReadSeekCloser) error
	DownloadRange(ctx context.Context, name string, offset, count int64) (io.ReadCloser, error)
	Stat(ctx context.Context, name string) (blob.Item, error)
	WalkItems(ctx context.Context, prefix string, fn func([]blob.Item) error) error
	Delete(ctx context.Context, name string) error
}

var _ Blobs = (*blob.Client)(nil)

// storageType is the kopia storage type of Storage. kopia reopens a
// repository's storage from its connection info, so each open Storage is
// registered under a handle for the life of the repository.
const storageType = "lifeboat-blob"

type connection struct {
	Handle string `json:"handle"`
}

var open = struct {
	sync.Mutex
	m map[string]*Storage
}{m: map[string]*Storage{}}

func init() {
	kblob.AddSupportedStorage(storageType, connection{}, func(_ context.Context, c *connection, _ bool) (kblob.Storage, error) {
		open.Lock()
		defer open.Unlock()
		s, ok := open.m[c.Handle]
		if !ok {
			return nil, fmt.Errorf("volume repository storage %q is not open in this process", c.Handle)
		}
		return s, nil
	})
}

// Storage is a kopia blob.Storage over a folder of a target's container.
type Storage struct {
	kblob.DefaultProviderImplementation
	blobs  Blobs
	prefix string // ends in '/'
	handle string
}

// NewStorage returns the storage of the repository of namespace on cluster;
// release it with Release once the repository is closed.
func NewStorage(blobs Blobs, cluster, namespace string) (*Storage, error) {
	prefix, err := archive.RepositoryPath(cluster, namespace)
	if err != nil {
		return nil, fmt.Errorf("volume repository: %w", err)
	}
	s := &Storage{blobs: blobs, prefix: prefix, handle: uuid.NewString()}
	open.Lock()
	open.m[s.handle] = s
	open.Unlock()
	return s, nil
}

// Release forgets the storage's registration.
func (s *Storage) Release() {
	open.Lock()
	delete(open.m, s.handle)
	open.Unlock()
}

// Prefix is the repository's folder in the target, ending in '/'.
func (s *Storage) Prefix() string { return s.prefix }

func (s *Storage) name(id kblob.ID) string { return s.prefix + string(id) }

// GetBlob implements kopia's blob.Storage.
func (s *Storage) GetBlob(ctx context.Context, id kblob.ID, offset, length int64, out kblob.OutputBuffer) error {
	if offset < 0 {
		return fmt.Errorf("%w: offset %d", kblob.ErrInvalidRange, offset)
	}
	out.Reset()
	if length == 0 {
		m, err := s.GetMetadata(ctx, id)
		if err != nil {
			return err
		}
		if offset > m.Length {
			return fmt.Errorf("%w: offset %d beyond %d bytes", kblob.ErrInvalidRange, offset, m.Length)
		}
		return nil
	}
	count := max(length, 0)
	if length < 0 {
		offset = 0
	}
	body, err := s.blobs.DownloadRange(ctx, s.name(id), offset, count)
	if err != nil {
		return translate(err)
	}
	defer body.Close()
	if _, err := io.Copy(out, body); err != nil {
		return translate(err)
	}
	if length > 0 {
		return kblob.EnsureLengthExactly(out.Length(), length)
	}
	return nil
}

// GetMetadata implements kopia's blob.Storage.
func (s *Storage) GetMetadata(ctx context.Context, id kblob.ID) (kblob.Metadata, error) {
	it, err := s.blobs.Stat(ctx, s.name(id))
	if err != nil {
		return kblob.Metadata{}, translate(err)
	}
	return kblob.Metadata{BlobID: id, Length: it.Size, Timestamp: it.Modified}, nil
}

// PutBlob implements kopia's blob.Storage.
func (s *Storage) PutBlob(ctx context.Context, id kblob.ID, data kblob.Bytes, opts kblob.PutOptions) error {
	switch {
	case opts.DoNotRecreate:
		return fmt.Errorf("%w: do-not-recreate", kblob.ErrUnsupportedPutBlobOption)
	case opts.HasRetentionOptions():
		return kblob.ErrUnsupportedObjectLock
	case !opts.SetModTime.IsZero():
		return kblob.ErrSetTimeUnsupported
	}
	if err := s.blobs.UploadBuffered(ctx, s.name(id), data.Reader()); err != nil {
		return translate(err)
	}
	if opts.GetModTime != nil {
		m, err := s.GetMetadata(ctx, id)
		if err != nil {
			return err
		}
		*opts.GetModTime = m.Timestamp
	}
	return nil
}

// DeleteBlob implements kopia's blob.Storage.
func (s *Storage) DeleteBlob(ctx context.Context, id kblob.ID) error {
	return translate(s.blobs.Delete(ctx, s.name(id)))
}

// ListBlobs implements kopia's blob.Storage.
func (s *Storage) ListBlobs(ctx context.Context, prefix kblob.ID, fn func(kblob.Metadata) error) error {
	err := s.blobs.WalkItems(ctx, s.name(prefix), func(items []blob.Item) error {
		for _, it := range items {
			if err := fn(kblob.Metadata{BlobID: kblob.ID(it.Name[len(s.prefix):]), Length: it.Size, Timestamp: it.Modified}); err != nil {
				return err
			}
		}
		return nil
	})
	return translate(err)
}

// ConnectionInfo implements kopia's blob.Storage.
func (s *Storage) ConnectionInfo() kblob.ConnectionInfo {
	return kblob.ConnectionInfo{Type: storageType, Config: &connection{Handle: s.handle}}
}

// DisplayName implements kopia's blob.Storage.
func (s *Storage) DisplayName() string { return "Lifeboat target folder " + s.prefix }

// Close implements kopia's blob.Storage: the Blob client outlives the repository.
func (s *Storage) Close(context.Context) error { return nil }

// FlushCaches implements kopia's blob.Storage.
func (s *Storage) FlushCaches(context.Context) error { return nil }

// IsReadOnly implements kopia's blob.Storage.
func (s *Storage) IsReadOnly() bool { return false }

// translate maps the Blob client's errors to kopia's.
func translate(err error) error {
	var re *azcore.ResponseError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("%w: %w", kblob.ErrBlobNotFound, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", kblob.ErrInvalidRange, err)
	}
	return err
}

var _ kblob.Storage = (*Storage)(nil)
