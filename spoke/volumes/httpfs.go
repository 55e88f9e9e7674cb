package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/kopia/kopia/fs"
)

// MoverClient is the spoke's side of a mover's HTTP API.
type MoverClient struct {
	// Base is the mover's URL, e.g. http://10.0.0.7:8080.
	Base  string
	Token string
	HTTP  *http.Client
}

// moverHTTP is the default client: no overall timeout (a file can be
// large), but bounded connects and waits for answers.
var moverHTTP = &http.Client{Transport: &http.Transport{
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	ResponseHeaderTimeout: 5 * time.Minute, // a tar stream's answer comes when it is unpacked
	MaxIdleConnsPerHost:   8,
	Proxy:                 nil,
}}

func (c *MoverClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return moverHTTP
}

func (c *MoverClient) request(ctx context.Context, method, endpoint, p string, body io.Reader) (*http.Request, error) {
	u := c.Base + endpoint
	if p != "" || method == http.MethodGet {
		u += "?path=" + url.QueryEscape(p)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return req, nil
}

// send sends req and returns the body of a 2xx answer.
func (c *MoverClient) send(req *http.Request) (io.ReadCloser, error) {
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("mover: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("mover: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", os.ErrNotExist, err)
		}
		return nil, err
	}
	return resp.Body, nil
}

// call sends a request and decodes the JSON answer into v (nil: drops it).
func (c *MoverClient) call(ctx context.Context, method, endpoint, p string, body io.Reader, v any) error {
	req, err := c.request(ctx, method, endpoint, p, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Close()
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp).Decode(v)
}

// Done tells the mover to exit.
func (c *MoverClient) Done(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, pathDone, "", nil, nil)
}

// Root is the volume's root directory, for kopia's uploader.
func (c *MoverClient) Root(ctx context.Context) (fs.Directory, error) {
	var e Entry
	if err := c.call(ctx, http.MethodGet, pathStat, "", nil, &e); err != nil {
		return nil, err
	}
	if !e.Mode.IsDir() {
		return nil, errors.New("mover: the volume's root is not a directory")
	}
	return &httpDir{httpEntry{c: c, e: e}}, nil
}

// Unpack streams a tar stream into a write-mode mover's volume.
func (c *MoverClient) Unpack(ctx context.Context, r io.Reader) (Unpacked, error) {
	var n Unpacked
	err := c.call(ctx, http.MethodPut, pathTar, "", r, &n)
	return n, err
}

// httpEntry is an fs.Entry of a mover's volume.
type httpEntry struct {
	c    *MoverClient
	path string // relative to the root, "" for the root
	e    Entry
}

func (h *httpEntry) Name() string       { return h.e.Name }
func (h *httpEntry) Size() int64        { return h.e.Size }
func (h *httpEntry) Mode() os.FileMode  { return h.e.Mode }
func (h *httpEntry) ModTime() time.Time { return time.Unix(0, h.e.MTime) }
func (h *httpEntry) IsDir() bool        { return h.e.Mode.IsDir() }
func (h *httpEntry) Sys() any           { return nil }
func (h *httpEntry) Owner() fs.OwnerInfo {
	return fs.OwnerInfo{UserID: h.e.UID, GroupID: h.e.GID}
}
func (h *httpEntry) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (h *httpEntry) LocalFilesystemPath() string { return "" }
func (h *httpEntry) Close()                      {}

type httpDir struct{ httpEntry }

func (d *httpDir) SupportsMultipleIterations() bool { return true }

func (d *httpDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	return fs.IterateEntriesAndFindChild(ctx, d, name)
}

// Iterate lists the directory: directories, regular files and symlinks (a
// volume's sockets, pipes and devices are not data and are left out).
func (d *httpDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	var es []Entry
	if err := d.c.call(ctx, http.MethodGet, pathDir, d.path, nil, &es); err != nil {
		return nil, err
	}
	var out []fs.Entry
	for _, e := range es {
		he := httpEntry{c: d.c, path: path.Join(d.path, e.Name), e: e}
		switch {
		case e.Mode.IsDir():
			out = append(out, &httpDir{he})
		case e.Mode.IsRegular():
			out = append(out, &httpFile{he})
		case e.Mode&os.ModeSymlink != 0:
			out = append(out, &httpSymlink{he})
		}
	}
	return fs.StaticIterator(out, nil), nil
}

type httpFile struct{ httpEntry }

func (f *httpFile) Open(ctx context.Context) (fs.Reader, error) {
	return &httpReader{ctx: ctx, f: f}, nil
}

type httpSymlink struct{ httpEntry }

func (l *httpSymlink) Readlink(context.Context) (string, error) { return l.e.Link, nil }
func (l *httpSymlink) Resolve(context.Context) (fs.Entry, error) {
	return nil, errors.New("mover: symlinks are not resolved")
}

// httpReader reads a file from the offset it was sought to.
type httpReader struct {
	ctx  context.Context
	f    *httpFile
	off  int64
	body io.ReadCloser
}

func (r *httpReader) Read(p []byte) (int, error) {
	if r.body == nil {
		req, err := r.f.c.request(r.ctx, http.MethodGet, pathFile, r.f.path, nil)
		if err != nil {
			return 0, err
		}
		if r.off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
		}
		if r.body, err = r.f.c.send(req); err != nil {
			return 0, err
		}
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	return n, err
}

func (r *httpReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.f.e.Size
	}
	if offset < 0 {
		return r.off, errors.New("mover: seek before the start")
	}
	if offset != r.off {
		r.Close()
		r.off = offset
	}
	return r.off, nil
}

func (r *httpReader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}

func (r *httpReader) Entry() (fs.Entry, error) { return r.f, nil }

var (
	_ fs.Directory = (*httpDir)(nil)
	_ fs.File      = (*httpFile)(nil)
	_ fs.Symlink   = (*httpSymlink)(nil)
)
