package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// ErrNotFound is wrapped by the error of Download and Get for a blob that does
// not exist. It is spoke/archive's, so that a Client is an archive.Store.
var ErrNotFound = archive.ErrNotFound

// ErrInvalidName is wrapped by the error for a name that is not a relative
// path of non-empty segments without '.' or '..'.
var ErrInvalidName = errors.New("invalid blob name")

// maxNameLength is Azure's limit on a blob name, prefix included.
const maxNameLength = 1024

// blobName maps a name relative to the target to the blob's full name.
func (c *Client) blobName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if err := checkPath(name); err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidName, name, err)
	}
	full := c.join(name)
	if len(full) > maxNameLength {
		return "", fmt.Errorf("%w %q: longer than %d characters with the prefix", ErrInvalidName, name, maxNameLength)
	}
	return full, nil
}

func (c *Client) join(name string) string {
	if c.cfg.Prefix == "" {
		return name
	}
	return c.cfg.Prefix + "/" + name
}

// listPrefix maps a relative list prefix ("" or ending in '/' allowed) to a full one.
func (c *Client) listPrefix(prefix string) (string, error) {
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		if err := checkPath(p); err != nil {
			return "", fmt.Errorf("%w: prefix %q: %v", ErrInvalidName, prefix, err)
		}
	}
	if c.cfg.Prefix == "" {
		return prefix, nil
	}
	return c.cfg.Prefix + "/" + prefix, nil
}

// Upload streams r into the block blob name, replacing it, and returns the
// number of bytes written. Blocks are staged in parallel (WithBlockSize,
// WithConcurrency) and committed at the end, so a blob is never seen half
// written; r is never read whole into memory.
func (c *Client) Upload(ctx context.Context, name string, r io.Reader) (int64, error) {
	full, err := c.blobName(name)
	if err != nil {
		return 0, err
	}
	cr := &countingReader{r: r}
	_, err = c.svc.UploadStream(ctx, c.cfg.Container, full, cr, &blockblob.UploadStreamOptions{
		BlockSize:   c.blockSize,
		Concurrency: c.concurrency,
	})
	if err != nil {
		return cr.n.Load(), &OpError{Op: "uploading", Name: name, Err: err}
	}
	return cr.n.Load(), nil
}

// UploadBuffered stores the blob name from r, which holds it whole (in
// memory, at most a few hundred MiB), in one request: no block buffers
// besides r. A failed request is retried from the start of r.
func (c *Client) UploadBuffered(ctx context.Context, name string, r io.ReadSeekCloser) error {
	full, err := c.blobName(name)
	if err != nil {
		return err
	}
	_, err = c.svc.ServiceClient().NewContainerClient(c.cfg.Container).NewBlockBlobClient(full).Upload(ctx, r, nil)
	if err != nil {
		return &OpError{Op: "uploading", Name: name, Err: err}
	}
	return nil
}

// Put is Upload, under the name spoke/archive's storage interface uses.
func (c *Client) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	return c.Upload(ctx, name, r)
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// downloadRetries is how often a broken download is resumed where it broke.
const downloadRetries = 3

// Download streams the blob name; the caller closes it. A missing blob is an
// error wrapping ErrNotFound. A connection that breaks while reading is
// resumed at the same offset, as long as the blob has not changed.
func (c *Client) Download(ctx context.Context, name string) (io.ReadCloser, error) {
	full, err := c.blobName(name)
	if err != nil {
		return nil, err
	}
	resp, err := c.svc.DownloadStream(ctx, c.cfg.Container, full, nil)
	if err != nil {
		return nil, notFound("downloading", name, err)
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: downloadRetries}), nil
}

// Get is Download, under the name spoke/archive's storage interface uses.
func (c *Client) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return c.Download(ctx, name)
}

// List returns the names under prefix, relative to the target's prefix, in
// lexical order. prefix matches the start of names, like Azure's: "b/1"
// lists "b/1/x" and "b/10/x"; end it with '/' for one folder.
func (c *Client) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	err := c.Walk(ctx, prefix, func(page []string) error {
		names = append(names, page...)
		return nil
	})
	return names, err
}

// Walk calls fn with every page of names under prefix, relative to the
// target's prefix, as Azure returns them (lexical order, up to 5,000 a page
// unless SetPageSize chose fewer), and stops at fn's first error.
func (c *Client) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	return c.WalkItems(ctx, prefix, func(items []Item) error {
		names := make([]string, len(items))
		for i, it := range items {
			names[i] = it.Name
		}
		return fn(names)
	})
}

// Item is a blob in a listing: its name relative to the target's prefix,
// its size and when it was last written.
type Item struct {
	Name     string
	Size     int64
	Modified time.Time
}

// WalkItems is Walk with each blob's size and modification time.
func (c *Client) WalkItems(ctx context.Context, prefix string, fn func([]Item) error) error {
	full, err := c.listPrefix(prefix)
	if err != nil {
		return err
	}
	opts := &azblob.ListBlobsFlatOptions{}
	if c.pageSize > 0 {
		opts.MaxResults = &c.pageSize
	}
	if full != "" {
		opts.Prefix = &full
	}
	strip := ""
	if c.cfg.Prefix != "" {
		strip = c.cfg.Prefix + "/"
	}
	pager := c.svc.NewListBlobsFlatPager(c.cfg.Container, opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return &OpError{Op: "listing", Name: prefix, Err: err}
		}
		items := make([]Item, 0, len(page.Segment.BlobItems))
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			it := Item{Name: strings.TrimPrefix(*b.Name, strip)}
			if p := b.Properties; p != nil {
				if p.ContentLength != nil {
					it.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					it.Modified = *p.LastModified
				}
			}
			items = append(items, it)
		}
		if err := fn(items); err != nil {
			return err
		}
	}
	return nil
}

// DownloadRange streams count bytes of the blob name from offset (count 0:
// to the end); the caller closes it. A missing blob is an error wrapping
// ErrNotFound.
func (c *Client) DownloadRange(ctx context.Context, name string, offset, count int64) (io.ReadCloser, error) {
	full, err := c.blobName(name)
	if err != nil {
		return nil, err
	}
	resp, err := c.svc.DownloadStream(ctx, c.cfg.Container, full, &azblob.DownloadStreamOptions{Range: azblob.HTTPRange{Offset: offset, Count: count}})
	if err != nil {
		return nil, notFound("downloading", name, err)
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: downloadRetries}), nil
}

// Stat returns the blob name's size and modification time; a missing blob
// is an error wrapping ErrNotFound.
func (c *Client) Stat(ctx context.Context, name string) (Item, error) {
	full, err := c.blobName(name)
	if err != nil {
		return Item{}, err
	}
	p, err := c.svc.ServiceClient().NewContainerClient(c.cfg.Container).NewBlobClient(full).GetProperties(ctx, nil)
	if err != nil {
		return Item{}, notFound("checking", name, err)
	}
	it := Item{Name: name}
	if p.ContentLength != nil {
		it.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		it.Modified = *p.LastModified
	}
	return it, nil
}

// Delete deletes the blob name and its snapshots. Deleting a blob that does
// not exist succeeds.
func (c *Client) Delete(ctx context.Context, name string) error {
	_, err := c.delete(ctx, name)
	return err
}

func (c *Client) delete(ctx context.Context, name string) (deleted bool, err error) {
	full, err := c.blobName(name)
	if err != nil {
		return false, err
	}
	_, err = c.svc.DeleteBlob(ctx, c.cfg.Container, full, &blob.DeleteOptions{DeleteSnapshots: new(blob.DeleteSnapshotsOptionTypeInclude)})
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return false, nil
	case err != nil:
		return false, &OpError{Op: "deleting", Name: name, Err: err}
	}
	return true, nil
}

// DeletePrefix deletes every blob in the folder prefix and returns how many it
// deleted. prefix is a folder, not the start of a name: "b/1" deletes "b/1/x"
// but not "b/10/x". An empty prefix is refused: it would empty the target.
func (c *Client) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	folder := strings.TrimSuffix(prefix, "/")
	if folder == "" {
		return 0, fmt.Errorf("%w: DeletePrefix needs a folder; it does not empty the whole target", ErrInvalidName)
	}
	var n atomic.Int64
	err := c.Walk(ctx, folder+"/", func(names []string) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(c.concurrency)
		for _, name := range names {
			g.Go(func() error {
				deleted, err := c.delete(gctx, name)
				if deleted {
					n.Add(1)
				}
				return err
			})
		}
		return g.Wait()
	})
	return int(n.Load()), err
}

// Exists reports whether the blob name exists.
func (c *Client) Exists(ctx context.Context, name string) (bool, error) {
	full, err := c.blobName(name)
	if err != nil {
		return false, err
	}
	_, err = c.svc.ServiceClient().NewContainerClient(c.cfg.Container).NewBlobClient(full).GetProperties(ctx, nil)
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return false, nil
	case err != nil:
		return false, &OpError{Op: "checking", Name: name, Err: err}
	}
	return true, nil
}

// notFound wraps ErrNotFound into err when the blob does not exist.
func notFound(doing, name string, err error) error {
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		err = fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return &OpError{Op: doing, Name: name, Err: err}
}

// OpError is a failed request to the storage service. Its message is one
// line: what failed and the service's answer (or why it could not be
// reached); the SDK's error, a multi-line dump of the request and the
// response, stays behind Unwrap for logs.
type OpError struct {
	// Op is what was being done ("uploading"), Name the blob or prefix.
	Op, Name string
	Err      error
}

func (e *OpError) Error() string { return fmt.Sprintf("%s %s: %s", e.Op, e.Name, answer(e.Err)) }
func (e *OpError) Unwrap() error { return e.Err }

// answer says in a few words what the storage service answered, or why it
// could not be reached.
func answer(err error) string {
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re):
		return "the storage service answered " + statusText(re)
	case isTransportError(err):
		return "the storage service could not be reached: " + describeTransportError(err)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}
