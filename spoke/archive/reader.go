package archive

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"sync/atomic"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Limits bound what a Reader accepts, so that a hostile or broken backup
// cannot make it use unbounded memory or time. A Writer writes nothing that
// DefaultLimits refuse.
type Limits struct {
	// MaxObjectSize bounds the entries of resources.tar.zst that the Reader
	// holds in memory, one at a time. A larger entry is read through (its
	// bytes still count for the sha256) and handed to Items as an Item with
	// Oversize set and no object: one object that cannot be restored, not a
	// corrupt backup.
	MaxObjectSize int64
	// MaxResourcesSize bounds resources.tar.zst once decompressed.
	MaxResourcesSize int64
	// MaxListSize bounds resource-list.json.gz and log.jsonl.gz, each once
	// decompressed. ResourceList and Log hold their file in memory.
	MaxListSize int64
}

// maxObjectSize is the Writer's limit and the default Reader's: the API
// server takes requests of at most about 3 MiB, and etcd's objects are
// smaller still, so a larger object cannot be restored anyway.
const maxObjectSize = 4 << 20

// DefaultLimits are what Open sets Reader.Limits to.
var DefaultLimits = Limits{
	MaxObjectSize:    maxObjectSize,
	MaxResourcesSize: 16 << 30,
	MaxListSize:      256 << 20,
}

const (
	// maxZstdWindow bounds the decoder's window (its memory); the Writer's
	// encoder level uses at most 8 MiB.
	maxZstdWindow = 8 << 20
	// maxLogLine bounds one line of log.jsonl.gz; the Writer cuts messages
	// well below it.
	maxLogLine = 1 << 20
)

// Reader reads one backup. It checks every file against backup.json while it
// reads: sizes, sha256, and the shape of every tar entry and list item.
//
// A restore calls Verify first, so that it fails before it changes anything
// in a cluster when any byte of the backup is wrong, then Items to apply the
// objects. Items runs Verify itself when it has not succeeded yet; it reads
// the files again and checks them again, and returns an error at the end if
// they changed in between.
//
// The methods are safe for concurrent use; each opens its own streams.
type Reader struct {
	// Limits defaults to DefaultLimits; change it before calling the methods.
	Limits Limits

	store    Store
	dir      string
	m        *Manifest
	key      *age.X25519Identity
	verified atomic.Bool
}

// Open reads and checks backup.json of the backup in folder dir (made with
// Path). It refuses a backup without backup.json (ErrIncomplete), with a
// formatVersion newer than FormatVersion (ErrNewerFormat), and a malformed
// backup.json or one that names another backup (ErrCorrupt). It reads no
// other file.
func Open(ctx context.Context, store Store, dir string) (*Reader, error) {
	_, cluster, id, err := ParsePath(dir)
	if err != nil {
		return nil, err
	}
	rc, err := store.Get(ctx, dir+"/"+ManifestFile)
	if errors.Is(err, ErrNotFound) {
		return nil, newError(ErrIncomplete, nil, "backup %s is incomplete: %s, the commit marker, is missing", id, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: reading %s: %w", id, ManifestFile, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("backup %s: reading %s: %w", id, ManifestFile, err)
	}
	if len(b) > maxManifestSize {
		return nil, newError(ErrCorrupt, nil, "backup %s: %s is larger than %d MiB", id, ManifestFile, maxManifestSize>>20)
	}
	m, err := parseManifest(id, b)
	if err != nil {
		return nil, err
	}
	m.SHA256 = digest(b)
	if m.BackupID != id || m.SourceCluster != cluster {
		return nil, newError(ErrCorrupt, nil, "backup %s: %s describes backup %s of cluster %s, but is stored in %s",
			id, ManifestFile, m.BackupID, m.SourceCluster, dir)
	}
	return &Reader{Limits: DefaultLimits, store: store, dir: dir, m: m}, nil
}

// CheckSHA256 returns an ErrCorrupt error when want is set and is not the
// sha256 of backup.json as Open read it: the backup was changed, or resealed,
// since its source cluster wrote it.
func (r *Reader) CheckSHA256(want string) error {
	if want == "" || want == r.m.SHA256 {
		return nil
	}
	return newError(ErrCorrupt, nil, "backup %s: %s has sha256 %s, but its source cluster %s wrote one with sha256 %s: it was changed since",
		r.m.BackupID, ManifestFile, r.m.SHA256, r.m.SourceCluster, want)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// UseKey gives the Reader the key that this cluster holds for the backup's
// target, nil for none, before any other method is called. It returns an
// error wrapping ErrKeyMissing when the backup is encrypted and key is nil,
// and ErrKeyMismatch when it is encrypted to another key: the backup cannot
// be read here. A plain backup needs no key, and reads with one too.
func (r *Reader) UseKey(key *age.X25519Identity) error {
	r.key = key
	return checkKey(r.m.BackupID, r.m.Encryption, key)
}

// plain is what f holds once decrypted, when the backup is encrypted.
func (r *Reader) plain(f *sourceFile) (io.Reader, error) {
	if r.m.Encryption == nil {
		return f, nil
	}
	if err := checkKey(r.m.BackupID, r.m.Encryption, r.key); err != nil {
		return nil, err
	}
	pr, err := age.Decrypt(f, r.key)
	if err != nil {
		return nil, r.corrupt(err, "%s: cannot be decrypted with key %s: %v", f.name, r.m.Encryption.Recipient, err)
	}
	return pr, nil
}

// Manifest returns backup.json as Open read it. Do not modify it.
func (r *Reader) Manifest() *Manifest {
	return r.m
}

// Verify reads every file of the backup and checks it against backup.json:
// sizes and sha256, every tar entry (a regular file at a clean path of the
// format's shape, within Limits, whose JSON names the object its path
// names), the entries against resource-list.json.gz, one for one and in
// order, the log's lines, and the counts. Errors wrap ErrCorrupt when the
// backup is at fault; errors from the store or ctx come as they are.
func (r *Reader) Verify(ctx context.Context) error {
	if err := r.scanResources(ctx, nil); err != nil {
		return err
	}
	if _, err := r.scanLog(ctx, false); err != nil {
		return err
	}
	r.verified.Store(true)
	return nil
}

// Items calls fn with every item, in the order they were written. It runs
// Verify first unless Verify has succeeded on this Reader, then reads
// resources.tar.zst again with the same checks; if the file changed in
// between, the item where that shows (or the end, for the sha256) gives an
// error. Items stops at, and returns, the first error fn returns. fn may keep
// the Item.
func (r *Reader) Items(ctx context.Context, fn func(Item) error) error {
	if fn == nil {
		return errors.New("archive: Items needs a function")
	}
	if !r.verified.Load() {
		if err := r.Verify(ctx); err != nil {
			return err
		}
	}
	return r.scanResources(ctx, fn)
}

// ResourceList returns resource-list.json.gz once it has read and checked
// all of it.
func (r *Reader) ResourceList(ctx context.Context) ([]ItemRef, error) {
	f, err := r.open(ctx, ResourceListFile)
	if err != nil {
		return nil, err
	}
	defer f.rc.Close()
	refs, err := r.readList(f)
	if err != nil {
		return nil, explain(err, f)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return refs, nil
}

func (r *Reader) readList(f *sourceFile) ([]ItemRef, error) {
	ld, err := r.newListDecoder(f)
	if err != nil {
		return nil, err
	}
	defer ld.close()
	var refs []ItemRef
	for {
		ref, ok, err := ld.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		refs = append(refs, ref)
	}
	if int64(len(refs)) != r.m.Counts.Items {
		return nil, r.corrupt(nil, "%s lists %d items, %s counts %d", ResourceListFile, len(refs), ManifestFile, r.m.Counts.Items)
	}
	return refs, nil
}

// Log returns log.jsonl.gz once it has read and checked all of it.
func (r *Reader) Log(ctx context.Context) ([]LogEntry, error) {
	return r.scanLog(ctx, true)
}

// corrupt makes an ErrCorrupt error about this backup.
func (r *Reader) corrupt(cause error, format string, args ...any) error {
	return newError(ErrCorrupt, cause, "backup %s: %s", r.m.BackupID, fmt.Sprintf(format, args...))
}

// callerError carries an error of the caller's fn out of a scan untouched.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

func (r *Reader) scanResources(ctx context.Context, fn func(Item) error) error {
	res, err := r.open(ctx, ResourcesFile)
	if err != nil {
		return err
	}
	defer res.rc.Close()
	list, err := r.open(ctx, ResourceListFile)
	if err != nil {
		return err
	}
	defer list.rc.Close()

	err = r.walkResources(ctx, res, list, fn)
	var ce callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return explain(err, res, list)
	}
	if err := res.check(); err != nil {
		return err
	}
	return list.check()
}

// walkResources reads resources.tar.zst and resource-list.json.gz in step.
func (r *Reader) walkResources(ctx context.Context, res, list *sourceFile, fn func(Item) error) error {
	resPlain, err := r.plain(res)
	if err != nil {
		return err
	}
	zr, err := zstd.NewReader(resPlain, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		return r.corrupt(err, "%s: %v", ResourcesFile, err)
	}
	defer zr.Close()
	tarIn := &boundedReader{r: zr, max: r.Limits.MaxResourcesSize,
		err: r.corrupt(nil, "%s decompresses to more than %d bytes, the most Lifeboat reads of it", ResourcesFile, r.Limits.MaxResourcesSize)}
	tr := tar.NewReader(tarIn)
	// streamErr reports a failure to read the stream; past the size limit,
	// the limit is the reason, whatever tar or zstd made of it.
	streamErr := func(err error, format string, args ...any) error {
		if tarIn.n > tarIn.max {
			return tarIn.err
		}
		return r.corrupt(err, format, args...)
	}
	ld, err := r.newListDecoder(list)
	if err != nil {
		return err
	}
	defer ld.close()

	counts := Counts{Resources: map[string]int64{}}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return streamErr(err, "%s: reading the tar stream: %v", ResourcesFile, err)
		}
		ref, err := parseEntryName(hdr.Name)
		if err != nil {
			return r.corrupt(err, "%s: entry %q: %v", ResourcesFile, hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return r.corrupt(nil, "%s: entry %q: is a %s, not a regular file", ResourcesFile, hdr.Name, typeName(hdr.Typeflag))
		}
		if hdr.Size < 0 {
			return r.corrupt(nil, "%s: entry %q: has a negative size", ResourcesFile, hdr.Name)
		}
		want, ok, err := ld.next()
		if err != nil {
			return err
		}
		if !ok {
			return r.corrupt(nil, "%s: entry %q: is not in %s, which ends before it", ResourcesFile, hdr.Name, ResourceListFile)
		}
		if !want.sameObject(ref) {
			return r.corrupt(nil, "%s: entry %q: is not in %s, which lists %q next", ResourcesFile, hdr.Name, ResourceListFile, want.entryName())
		}
		it := Item{Group: want.Group, Version: want.Version, Resource: want.Resource, Kind: want.Kind,
			Namespace: want.Namespace, Name: want.Name}
		var n int64
		if hdr.Size > r.Limits.MaxObjectSize {
			it.Oversize = hdr.Size
			n, err = io.Copy(io.Discard, tr)
		} else {
			// ReadAll grows with what arrives, not with what the header claims.
			it.Object, err = io.ReadAll(io.LimitReader(tr, hdr.Size))
			n = int64(len(it.Object))
		}
		if err != nil {
			return streamErr(err, "%s: entry %q: %v", ResourcesFile, hdr.Name, err)
		}
		if n != hdr.Size {
			return r.corrupt(nil, "%s: entry %q: is cut short (%d of %d bytes)", ResourcesFile, hdr.Name, n, hdr.Size)
		}
		if it.Oversize == 0 {
			if err := checkObject(want, it.Object); err != nil {
				return r.corrupt(err, "%s: entry %q: %v", ResourcesFile, hdr.Name, err)
			}
		}
		counts.Items++
		counts.ObjectBytes += hdr.Size
		counts.Resources[want.resourceKey()]++
		if fn != nil {
			if err := fn(it); err != nil {
				return callerError{err}
			}
		}
	}
	// The Writer ends the tar stream exactly at the end of the zstd stream;
	// reading on to EOF also makes the decoder check the frame checksum.
	n, err := io.Copy(io.Discard, tarIn)
	if err != nil {
		return streamErr(err, "%s: after the end of the tar archive: %v", ResourcesFile, err)
	}
	if n > 0 {
		return r.corrupt(nil, "%s: %d bytes of trailing data after the end of the tar archive", ResourcesFile, n)
	}
	if ref, more, err := ld.next(); err != nil {
		return err
	} else if more {
		return r.corrupt(nil, "%s lists %q, which %s does not hold", ResourceListFile, ref.entryName(), ResourcesFile)
	}
	return r.checkCounts(counts)
}

func (r *Reader) checkCounts(got Counts) error {
	want := r.m.Counts
	if got.Items != want.Items {
		return r.corrupt(nil, "%s holds %d items, %s counts %d", ResourcesFile, got.Items, ManifestFile, want.Items)
	}
	if got.ObjectBytes != want.ObjectBytes {
		return r.corrupt(nil, "%s holds %d bytes of objects, %s counts %d", ResourcesFile, got.ObjectBytes, ManifestFile, want.ObjectBytes)
	}
	if !maps.Equal(got.Resources, want.Resources) {
		keys := slices.Sorted(maps.Keys(got.Resources))
		keys = append(keys, slices.Sorted(maps.Keys(want.Resources))...)
		for _, k := range keys {
			if got.Resources[k] != want.Resources[k] {
				return r.corrupt(nil, "%s holds %d items of %s, %s counts %d", ResourcesFile, got.Resources[k], k, ManifestFile, want.Resources[k])
			}
		}
	}
	return nil
}

// scanLog reads and checks log.jsonl.gz, and returns its entries if keep.
func (r *Reader) scanLog(ctx context.Context, keep bool) ([]LogEntry, error) {
	f, err := r.open(ctx, LogFile)
	if err != nil {
		return nil, err
	}
	defer f.rc.Close()
	entries, err := r.walkLog(f, keep)
	if err != nil {
		return nil, explain(err, f)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return entries, nil
}

func (r *Reader) walkLog(f *sourceFile, keep bool) ([]LogEntry, error) {
	in, err := r.plain(f)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, r.corrupt(err, "%s: %v", LogFile, err)
	}
	defer gz.Close()
	sc := bufio.NewScanner(&boundedReader{r: gz, max: r.Limits.MaxListSize,
		err: r.corrupt(nil, "%s decompresses to more than %d bytes, the most Lifeboat reads of it", LogFile, r.Limits.MaxListSize)})
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	var entries []LogEntry
	var line, warnings, errs int64
	for sc.Scan() {
		line++
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, r.corrupt(err, "%s: line %d: %v", LogFile, line, err)
		}
		switch e.Level {
		case LevelInfo:
		case LevelWarning:
			warnings++
		case LevelError:
			errs++
		default:
			return nil, r.corrupt(nil, "%s: line %d: level %q is not info, warning or error", LogFile, line, e.Level)
		}
		if keep {
			entries = append(entries, e)
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, r.corrupt(err, "%s: line %d is longer than %d bytes", LogFile, line+1, maxLogLine)
	} else if errors.Is(err, ErrCorrupt) {
		return nil, err
	} else if err != nil {
		return nil, r.corrupt(err, "%s: %v", LogFile, err)
	}
	if warnings != r.m.Counts.Warnings || errs != r.m.Counts.Errors {
		return nil, r.corrupt(nil, "%s has %d warnings and %d errors, %s counts %d and %d",
			LogFile, warnings, errs, ManifestFile, r.m.Counts.Warnings, r.m.Counts.Errors)
	}
	return entries, nil
}

// listDecoder reads resource-list.json.gz one item at a time.
type listDecoder struct {
	r       *Reader
	gz      *gzip.Reader
	dec     *json.Decoder
	started bool
	ended   bool
	n       int
}

func (r *Reader) newListDecoder(f *sourceFile) (*listDecoder, error) {
	in, err := r.plain(f)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, r.corrupt(err, "%s: %v", ResourceListFile, err)
	}
	bounded := &boundedReader{r: gz, max: r.Limits.MaxListSize,
		err: r.corrupt(nil, "%s decompresses to more than %d bytes, the most Lifeboat reads of it", ResourceListFile, r.Limits.MaxListSize)}
	return &listDecoder{r: r, gz: gz, dec: json.NewDecoder(bounded)}, nil
}

func (d *listDecoder) close() { d.gz.Close() }

// next returns the next item, or false at the end of the array, having
// checked that nothing follows it.
func (d *listDecoder) next() (ItemRef, bool, error) {
	if d.ended {
		return ItemRef{}, false, nil
	}
	if !d.started {
		if err := d.expect(json.Delim('['), "is not a JSON array"); err != nil {
			return ItemRef{}, false, err
		}
		d.started = true
	}
	if !d.dec.More() {
		if err := d.expect(json.Delim(']'), "does not end with ']'"); err != nil {
			return ItemRef{}, false, err
		}
		// Read on to EOF, which also makes gzip check its CRC.
		if tok, err := d.dec.Token(); err != io.EOF {
			if err == nil {
				return ItemRef{}, false, d.r.corrupt(nil, "%s: %v follows the JSON array", ResourceListFile, tok)
			}
			return ItemRef{}, false, d.wrap(err)
		}
		d.ended = true
		return ItemRef{}, false, nil
	}
	d.n++
	var ref ItemRef
	if err := d.dec.Decode(&ref); err != nil {
		return ItemRef{}, false, d.wrap(err)
	}
	if err := ref.validate(true); err != nil {
		return ItemRef{}, false, d.r.corrupt(err, "%s: item %d: %v", ResourceListFile, d.n, err)
	}
	return ref, true, nil
}

func (d *listDecoder) expect(delim json.Delim, msg string) error {
	tok, err := d.dec.Token()
	if err != nil {
		return d.wrap(err)
	}
	if tok != delim {
		return d.r.corrupt(nil, "%s %s", ResourceListFile, msg)
	}
	return nil
}

func (d *listDecoder) wrap(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return d.r.corrupt(err, "%s: item %d: %v", ResourceListFile, d.n, err)
}

// sourceFile reads one file of the backup, hashing and counting what it
// reads and refusing to read past the size backup.json records.
type sourceFile struct {
	ctx  context.Context
	id   string
	name string
	want FileInfo
	rc   io.ReadCloser
	hash hash.Hash
	n    int64
	// readErr is a failure of the store or ctx: not the backup's fault.
	readErr  error
	checked  bool
	checkErr error
}

func (r *Reader) open(ctx context.Context, name string) (*sourceFile, error) {
	rc, err := r.store.Get(ctx, r.dir+"/"+name)
	if errors.Is(err, ErrNotFound) {
		return nil, r.corrupt(err, "%s is missing, though %s lists it", name, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: reading %s: %w", r.m.BackupID, name, err)
	}
	return &sourceFile{ctx: ctx, id: r.m.BackupID, name: name, want: r.m.Files[name], rc: rc, hash: sha256.New()}, nil
}

func (f *sourceFile) Read(p []byte) (int, error) {
	if f.readErr != nil {
		return 0, f.readErr
	}
	if f.n > f.want.Size {
		return 0, f.tooLarge()
	}
	if err := f.ctx.Err(); err != nil {
		f.readErr = err
		return 0, err
	}
	n, err := f.rc.Read(p)
	f.hash.Write(p[:n])
	f.n += int64(n)
	if err != nil && err != io.EOF {
		f.readErr = fmt.Errorf("backup %s: reading %s: %w", f.id, f.name, err)
		return n, f.readErr
	}
	if f.n > f.want.Size {
		return n, f.tooLarge()
	}
	return n, err
}

func (f *sourceFile) tooLarge() error {
	return newError(ErrCorrupt, nil, "backup %s: %s is larger than the %d bytes %s records: it was changed or replaced",
		f.id, f.name, f.want.Size, ManifestFile)
}

// check reads the rest of the file and compares its size and sha256 with
// backup.json.
func (f *sourceFile) check() error {
	if f.checked {
		return f.checkErr
	}
	f.checked = true
	_, err := io.Copy(io.Discard, f)
	switch {
	case f.readErr != nil:
		f.checkErr = f.readErr
	case err != nil:
		f.checkErr = err
	case f.n != f.want.Size:
		f.checkErr = newError(ErrCorrupt, nil, "backup %s: %s is %d bytes, %s records %d: it is truncated or was replaced",
			f.id, f.name, f.n, ManifestFile, f.want.Size)
	default:
		if sum := hex.EncodeToString(f.hash.Sum(nil)); sum != f.want.SHA256 {
			f.checkErr = newError(ErrCorrupt, nil, "backup %s: %s has sha256 %s, %s records %s: it was changed or damaged",
				f.id, f.name, sum, ManifestFile, f.want.SHA256)
		}
	}
	return f.checkErr
}

// explain turns a corrupt-backup error into its root cause when there is
// one: a store failure, or a file that does not match backup.json (a
// truncated file fails to decompress; the size says why).
func explain(err error, files ...*sourceFile) error {
	if !errors.Is(err, ErrCorrupt) {
		return err
	}
	for _, f := range files {
		if f.readErr != nil {
			return f.readErr
		}
	}
	for _, f := range files {
		if cerr := f.check(); cerr != nil {
			return cerr
		}
	}
	return err
}

// boundedReader fails with err once more than max bytes came through.
type boundedReader struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n, b.err
	}
	return n, err
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry of type %q", flag)
}
