package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/lifeboat-dev/lifeboat/spoke/panics"
)

// Meta is what the caller knows about a backup before it starts.
type Meta struct {
	Owner Owner
	// Spec is the ApplicationBackup spec, as JSON; written to backup.json as is.
	Spec json.RawMessage
	// LifeboatVersion defaults to the main module's version.
	LifeboatVersion string
	// StartTimestamp defaults to when NewWriter is called.
	StartTimestamp time.Time
	// Recipient, when set, is the age X25519 public key that the backup's
	// files are encrypted to as they stream out; backup.json records it.
	Recipient *age.X25519Recipient
}

// maxLogMessage bounds one log message; longer ones are cut.
const maxLogMessage = 16 << 10

// Writer writes one backup. Add, Log, Close and Abort may be called from
// several goroutines. Each file streams to the store while it is written:
// the Writer holds compressor state and small buffers, never the backup.
//
// A Writer that fails (Add returns an error not wrapping ErrInvalidItem, or
// Close fails) is done: call Abort. A common shape is
//
//	w, err := archive.NewWriter(ctx, store, dir, meta)
//	...
//	defer w.Abort(context.WithoutCancel(ctx)) // does nothing once Close succeeded
//	for ... { w.Add(item) }
//	m, err := w.Close(ctx)
type Writer struct {
	store  Store
	dir    string
	id     string
	meta   Meta
	cancel context.CancelFunc // ends the uploads

	mu        sync.Mutex
	err       error // set once the Writer cannot go on
	committed atomic.Bool
	aborted   bool

	// Each file goes compressor -> seal (age, or nothing) -> upload.
	resources *upload
	resSeal   io.WriteCloser
	zw        *zstd.Encoder
	tw        *tar.Writer
	list      *upload
	listSeal  io.WriteCloser
	listGz    *gzip.Writer
	listEmpty bool
	log       *upload
	logSeal   io.WriteCloser
	logGz     *gzip.Writer

	counts   Counts
	volumes  []VolumeSnapshot
	commands []CommandOutput
	modTime  time.Time
	buf      bytes.Buffer // one list entry or log line
}

var errAborted = errors.New("backup aborted")

// encoderOptions are the zstd settings of resources.tar.zst. A 2 MiB window
// compresses Kubernetes objects as well as the default 8 MiB (they are
// small; what repeats, repeats nearby) with a quarter of the memory, and one
// encoder goroutine keeps a Writer's CPU use predictable next to other work.
func encoderOptions() []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(2 << 20),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderConcurrency(1),
	}
}

// NewWriter starts a backup in folder dir (made with Path). It refuses a
// folder that holds a finished backup; files an unfinished one left behind
// are overwritten. ctx bounds the uploads, which run until Close or Abort.
func NewWriter(ctx context.Context, store Store, dir string, meta Meta) (*Writer, error) {
	_, _, id, err := ParsePath(dir)
	if err != nil {
		return nil, err
	}
	if err := meta.Owner.validate(); err != nil {
		return nil, err
	}
	if len(meta.Spec) > 0 && !json.Valid(meta.Spec) {
		return nil, errors.New("spec is not valid JSON")
	}
	if meta.LifeboatVersion == "" {
		meta.LifeboatVersion = "(unknown)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			meta.LifeboatVersion = bi.Main.Version
		}
	}
	if meta.StartTimestamp.IsZero() {
		meta.StartTimestamp = time.Now()
	}
	meta.StartTimestamp = meta.StartTimestamp.UTC()

	rc, err := store.Get(ctx, dir+"/"+ManifestFile)
	switch {
	case err == nil:
		rc.Close()
		return nil, newError(ErrExists, nil, "backup %s already exists in %s: it has a %s", id, dir, ManifestFile)
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("checking for an existing backup %s: %w", id, err)
	}

	uploadCtx, cancel := context.WithCancel(ctx)
	w := &Writer{
		store: store, dir: dir, id: id, meta: meta, cancel: cancel,
		listEmpty: true,
		counts:    Counts{Resources: map[string]int64{}},
		modTime:   meta.StartTimestamp.Truncate(time.Second),
	}
	w.resources = startUpload(uploadCtx, store, dir+"/"+ResourcesFile)
	w.list = startUpload(uploadCtx, store, dir+"/"+ResourceListFile)
	w.log = startUpload(uploadCtx, store, dir+"/"+LogFile)
	var sealErrs [3]error
	w.resSeal, sealErrs[0] = seal(w.resources, meta.Recipient)
	w.listSeal, sealErrs[1] = seal(w.list, meta.Recipient)
	w.logSeal, sealErrs[2] = seal(w.log, meta.Recipient)
	if err := errors.Join(sealErrs[:]...); err != nil {
		w.Abort(ctx)
		return nil, fmt.Errorf("encrypting backup %s: %w", id, err)
	}
	w.zw, err = zstd.NewWriter(w.resSeal, encoderOptions()...)
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	w.tw = tar.NewWriter(w.zw)
	w.listGz = gzip.NewWriter(w.listSeal)
	w.logGz = gzip.NewWriter(w.logSeal)
	if _, err := w.listGz.Write([]byte("[")); err != nil {
		w.Abort(ctx)
		return nil, err
	}
	return w, nil
}

// Add writes one item; it does not keep it.Object. An item that cannot be
// written as it is (a bad name, an object that is not JSON or does not match
// its fields, more than 4 MiB) gives an error wrapping ErrInvalidItem and
// leaves the Writer usable; the caller usually logs it with LevelError and
// goes on. Add does not look for an item added twice: it would be restored
// twice.
func (w *Writer) Add(it Item) error {
	ref := it.Ref()
	if err := ref.validate(true); err != nil {
		return newError(ErrInvalidItem, nil, "item %s: %v", ref, err)
	}
	if len(it.Object) > maxObjectSize {
		return newError(ErrInvalidItem, nil, "item %s: object is %d bytes, more than the %d MiB limit", ref, len(it.Object), maxObjectSize>>20)
	}
	if err := checkObject(ref, it.Object); err != nil {
		return newError(ErrInvalidItem, nil, "item %s: %v", ref, err)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     ref.entryName(),
		Size:     int64(len(it.Object)),
		Mode:     0o644,
		ModTime:  w.modTime,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return w.fail(ResourcesFile, err)
	}
	if _, err := w.tw.Write(it.Object); err != nil {
		return w.fail(ResourcesFile, err)
	}

	w.buf.Reset()
	if w.listEmpty {
		w.buf.WriteString("\n")
		w.listEmpty = false
	} else {
		w.buf.WriteString(",\n")
	}
	if err := json.NewEncoder(&w.buf).Encode(ref); err != nil { // appends a newline
		return w.fail(ResourceListFile, err)
	}
	w.buf.Truncate(w.buf.Len() - 1)
	if _, err := w.listGz.Write(w.buf.Bytes()); err != nil {
		return w.fail(ResourceListFile, err)
	}

	w.counts.Items++
	w.counts.ObjectBytes += int64(len(it.Object))
	w.counts.Resources[ref.resourceKey()]++
	return nil
}

// Log records an event; item is nil for one about the whole backup. Warnings
// and errors are counted in backup.json; a level other than the three
// constants is recorded as LevelError. A failure to write the log surfaces
// from the next Add or Close.
func (w *Writer) Log(level Level, item *ItemRef, message string) {
	switch level {
	case LevelInfo, LevelWarning, LevelError:
	default:
		level = LevelError
	}
	if len(message) > maxLogMessage {
		message = message[:maxLogMessage] + "…"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.buf.Reset()
	if item != nil {
		cp := *item
		item = &cp
	}
	if err := json.NewEncoder(&w.buf).Encode(LogEntry{Time: time.Now().UTC(), Level: level, Item: item, Message: message}); err != nil {
		w.fail(LogFile, err)
		return
	}
	if _, err := w.logGz.Write(w.buf.Bytes()); err != nil {
		w.fail(LogFile, err)
		return
	}
	switch level {
	case LevelWarning:
		w.counts.Warnings++
	case LevelError:
		w.counts.Errors++
	}
}

// Close finishes the three data files, waits until the store has them, then
// writes backup.json, the commit marker, and returns what it wrote. If Close
// fails, the backup is not committed: call Abort.
func (w *Writer) Close(ctx context.Context) (*Manifest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed.Load() {
		return nil, errors.New("archive: Close called twice")
	}
	if w.err != nil {
		return nil, w.err
	}
	files := map[string]FileInfo{}
	finish := func(name string, u *upload, closers ...io.Closer) error {
		for _, c := range closers {
			if err := c.Close(); err != nil {
				return w.fail(name, err)
			}
		}
		info, err := u.finish(ctx)
		if err != nil {
			return w.fail(name, err)
		}
		files[name] = info
		return nil
	}
	if err := finish(ResourcesFile, w.resources, w.tw, w.zw, w.resSeal); err != nil {
		return nil, err
	}
	if _, err := w.listGz.Write([]byte("\n]\n")); err != nil {
		return nil, w.fail(ResourceListFile, err)
	}
	if err := finish(ResourceListFile, w.list, w.listGz, w.listSeal); err != nil {
		return nil, err
	}
	if err := finish(LogFile, w.log, w.logGz, w.logSeal); err != nil {
		return nil, err
	}

	_, cluster, _, _ := ParsePath(w.dir)
	m := &Manifest{
		FormatVersion:       formatVersionPlain,
		BackupID:            w.id,
		SourceCluster:       cluster,
		Owner:               w.meta.Owner,
		Spec:                w.meta.Spec,
		StartTimestamp:      w.meta.StartTimestamp,
		CompletionTimestamp: time.Now().UTC(),
		LifeboatVersion:     w.meta.LifeboatVersion,
		Counts:              w.counts,
		Files:               files,
		Volumes:             w.volumes,
		Commands:            w.commands,
	}
	if r := w.meta.Recipient; r != nil {
		m.FormatVersion = formatVersionEncrypted
		m.Encryption = &Encryption{Recipient: r.String()}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, w.fail(ManifestFile, err)
	}
	b = append(b, '\n')
	if _, err := w.store.Put(ctx, w.dir+"/"+ManifestFile, bytes.NewReader(b)); err != nil {
		return nil, w.fail(ManifestFile, err)
	}
	m.SHA256 = digest(b)
	w.committed.Store(true)
	w.err = errors.New("archive: backup already closed")
	w.cancel()
	return m, nil
}

// AddVolume records the snapshot of a claim's data in backup.json.
func (w *Writer) AddVolume(v VolumeSnapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.volumes = append(w.volumes, v)
}

// AddCommand records the output of a backup command in backup.json.
func (w *Writer) AddCommand(c CommandOutput) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commands = append(w.commands, c)
}

// Abort gives the backup up: it stops the uploads and deletes whatever the
// Writer has stored, best-effort, returning what it could not delete. After a
// successful Close it does nothing, so it suits a defer.
func (w *Writer) Abort(ctx context.Context) error {
	if w.committed.Load() {
		return nil
	}
	// Unblock an Add or Close that waits on the store before taking the lock.
	w.cancel()
	for _, u := range []*upload{w.resources, w.list, w.log} {
		if u != nil {
			u.pw.CloseWithError(errAborted)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed.Load() || w.aborted {
		return nil
	}
	w.aborted = true
	w.err = newError(errAborted, nil, "backup %s was aborted", w.id)
	for _, u := range []*upload{w.resources, w.list, w.log} {
		if u != nil {
			<-u.done
		}
	}
	if w.zw != nil {
		w.zw.Close() // releases the encoder; its output has nowhere to go
	}
	var errs []error
	for _, name := range []string{ManifestFile, ResourcesFile, ResourceListFile, LogFile} {
		if err := w.store.Delete(ctx, w.dir+"/"+name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fail makes err the Writer's final state; name is the file it concerns.
func (w *Writer) fail(name string, err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("backup %s: writing %s: %w", w.id, name, err)
	}
	return w.err
}

// upload streams one file into Store.Put through a pipe, hashing and
// counting what goes in.
type upload struct {
	name string
	pw   *io.PipeWriter
	hash hash.Hash
	size int64

	done chan struct{} // closed when Put has returned
	putN int64
	err  error
}

func startUpload(ctx context.Context, store Store, name string) *upload {
	pr, pw := io.Pipe()
	u := &upload{name: name, pw: pw, hash: sha256.New(), done: make(chan struct{})}
	go func() {
		defer close(u.done)
		u.putN, u.err = panics.Call(ctx, func() (int64, error) { return store.Put(ctx, name, pr) })
		// Make a writer that is still writing fail rather than block forever.
		if u.err != nil {
			pr.CloseWithError(u.err)
		} else {
			pr.CloseWithError(errors.New("the store stopped reading before the end of the file"))
		}
	}()
	return u
}

func (u *upload) Write(p []byte) (int, error) {
	n, err := u.pw.Write(p)
	u.hash.Write(p[:n])
	u.size += int64(n)
	return n, err
}

// finish ends the stream and waits for the store to commit it.
func (u *upload) finish(ctx context.Context) (FileInfo, error) {
	u.pw.Close()
	select {
	case <-u.done:
	case <-ctx.Done():
		return FileInfo{}, ctx.Err()
	}
	if u.err != nil {
		return FileInfo{}, u.err
	}
	if u.putN != u.size {
		return FileInfo{}, fmt.Errorf("the store read %d bytes of %d", u.putN, u.size)
	}
	return FileInfo{Size: u.size, SHA256: hex.EncodeToString(u.hash.Sum(nil))}, nil
}
