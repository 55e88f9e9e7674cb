package volumes

import (
	"archive/tar"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The mover's HTTP API: the spoke's half is in httpfs.go.
const (
	pathStat  = "/v1/stat" // ?path=: one Entry
	pathDir   = "/v1/dir"  // ?path=: the directory's Entries
	pathFile  = "/v1/file" // ?path=: the file's content (Range requests work)
	pathTar   = "/v1/tar"  // PUT: unpack the tar stream into the volume (write mode)
	pathReady = "/healthz" // unauthenticated: the server is up
	pathDone  = "/v1/done" // POST: the spoke is finished; the mover exits
)

// TokenEnv is the environment variable that carries a mover's token: the
// per-run random secret that the spoke sends as a bearer token. It grants
// only what the mover serves: reading (or, in write mode, filling) the one
// volume it mounts, while the pod lives.
const TokenEnv = "LIFEBOAT_MOVER_TOKEN"

// Entry is a file, directory or symlink of a volume, as the mover lists it.
type Entry struct {
	Name  string      `json:"name"`
	Mode  os.FileMode `json:"mode"`
	Size  int64       `json:"size"`
	MTime int64       `json:"mtime"` // Unix nanoseconds
	UID   uint32      `json:"uid"`
	GID   uint32      `json:"gid"`
	Link  string      `json:"link,omitempty"` // a symlink's target
}

// Mover serves one mounted volume to the spoke.
type Mover struct {
	// Root is where the volume is mounted.
	Root string
	// Token is the bearer token the spoke must send.
	Token string
	// Write lets the spoke fill the volume (PUT /v1/tar) instead of reading it.
	Write bool
}

// Serve serves on ln until ctx ends or the spoke says it is done.
func (m *Mover) Serve(ctx context.Context, ln net.Listener) error {
	if m.Token == "" {
		return errors.New("mover: no token: set " + TokenEnv)
	}
	root, err := os.OpenRoot(m.Root)
	if err != nil {
		return fmt.Errorf("mover: %w", err)
	}
	defer root.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathReady, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("POST "+pathDone, m.auth(func(w http.ResponseWriter, _ *http.Request) error { stop(); return nil }))
	if m.Write {
		mux.Handle("PUT "+pathTar, m.auth(func(w http.ResponseWriter, r *http.Request) error {
			n, err := unpack(root, r.Body)
			if err != nil {
				return err
			}
			syscall.Sync()
			return json.NewEncoder(w).Encode(n)
		}))
	} else {
		mux.Handle("GET "+pathStat, m.auth(func(w http.ResponseWriter, r *http.Request) error {
			e, err := stat(root, r.URL.Query().Get("path"))
			if err != nil {
				return err
			}
			return json.NewEncoder(w).Encode(e)
		}))
		mux.Handle("GET "+pathDir, m.auth(func(w http.ResponseWriter, r *http.Request) error {
			es, err := list(root, r.URL.Query().Get("path"))
			if err != nil {
				return err
			}
			return json.NewEncoder(w).Encode(es)
		}))
		mux.Handle("GET "+pathFile, m.auth(func(w http.ResponseWriter, r *http.Request) error {
			name, err := clean(r.URL.Query().Get("path"))
			if err != nil {
				return err
			}
			f, err := root.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", name)
			}
			http.ServeContent(w, r, "", fi.ModTime(), f)
			return nil
		}))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// auth refuses requests without the token and turns errors into answers.
func (m *Mover) auth(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	want := []byte("Bearer " + m.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if err := h(w, r); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, fs.ErrNotExist) {
				status = http.StatusNotFound
			}
			http.Error(w, err.Error(), status)
		}
	})
}

// clean maps a request's path (relative, slash-separated; "" is the root)
// to a name in the root.
func clean(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("invalid path %q", p)
	}
	return p, nil
}

func stat(root *os.Root, p string) (Entry, error) {
	name, err := clean(p)
	if err != nil {
		return Entry{}, err
	}
	fi, err := root.Lstat(name)
	if err != nil {
		return Entry{}, err
	}
	return entry(root, name, fi), nil
}

func list(root *os.Root, p string) ([]Entry, error) {
	name, err := clean(p)
	if err != nil {
		return nil, err
	}
	d, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, entry(root, path.Join(name, de.Name()), fi))
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func entry(root *os.Root, name string, fi fs.FileInfo) Entry {
	e := Entry{Name: fi.Name(), Mode: fi.Mode(), Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = st.Uid, st.Gid
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		e.Link, _ = root.Readlink(name)
	}
	return e
}

// Unpacked is what a write-mode mover wrote.
type Unpacked struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// unpack writes a tar stream of directories, regular files and symlinks into
// root, keeping modes, owners and modification times. os.Root keeps every
// write inside the volume, whatever the names and link targets say.
func unpack(root *os.Root, r io.Reader) (Unpacked, error) {
	var n Unpacked
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		name, err := clean(strings.TrimSuffix(h.Name, "/"))
		if err != nil || name == "." {
			return n, fmt.Errorf("tar entry %q: invalid name", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return n, err
			}
			if err := root.Chmod(name, mode); err != nil {
				return n, err
			}
			dirs = append(dirs, dirTime{name, h.ModTime})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return n, err
			}
			w, err := io.Copy(f, tr)
			if err == nil {
				err = f.Chmod(mode)
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return n, err
			}
			n.Files++
			n.Bytes += w
			if err := root.Chtimes(name, h.ModTime, h.ModTime); err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return n, err
			}
		default:
			return n, fmt.Errorf("tar entry %q: unsupported type %q", h.Name, h.Typeflag)
		}
		if err := root.Lchown(name, h.Uid, h.Gid); err != nil && !errors.Is(err, syscall.EPERM) {
			return n, err
		}
	}
	for _, d := range slices.Backward(dirs) {
		if err := root.Chtimes(d.name, d.t, d.t); err != nil {
			return n, err
		}
	}
	return n, nil
}
