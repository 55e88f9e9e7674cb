package archive

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
)

// CheckRestoreLogPath accepts path only if it is where RestoreLogPath keeps
// a restore's log in the backup folder dir: dir/restores/<cluster>/<namespace>/<name>-<uid>.jsonl.gz,
// with nothing a path could escape by. path comes from a restore's status,
// which a spoke reported: it is checked before it is read.
func CheckRestoreLogPath(dir, path string) error {
	rest, ok := strings.CutPrefix(path, dir+"/"+RestoresDir+"/")
	segs := strings.Split(rest, "/")
	if !ok || len(segs) != 3 || !isDNSLabel(segs[0]) || !isDNSLabel(segs[1]) {
		return fmt.Errorf("%q is not a restore log of the backup in %s: want %s/%s/<cluster>/<namespace>/<name>-<uid>.jsonl.gz", path, dir, dir, RestoresDir)
	}
	file, ok := strings.CutSuffix(segs[2], ".jsonl.gz")
	if !ok || !isObjectName(segs[2]) || !isLowerAlnumWith(file, "-.") {
		return fmt.Errorf("%q is not a restore log of the backup in %s: the file must be <name>-<uid>.jsonl.gz", path, dir)
	}
	return nil
}

// maxLogSize bounds a log once decompressed, for LogTail as for the Reader.
var maxLogSize = DefaultLimits.MaxListSize

// LogTail reads the gzipped log name from store and returns its last
// maxBytes bytes, decompressed, starting at a line when it is cut (truncated
// says it was), and the size of the whole log decompressed. It holds at
// most 2*maxBytes in memory and refuses a log larger than the format allows
// (256 MiB decompressed). An encrypted log is decrypted with key, the key
// of the target it is read through; without one it gives an error wrapping
// ErrKeyMissing, with another ErrKeyMismatch.
func LogTail(ctx context.Context, store Store, name string, maxBytes int, key *age.X25519Identity) (text string, truncated bool, size int64, err error) {
	if maxBytes <= 0 {
		return "", false, 0, fmt.Errorf("log %s: maxBytes must be positive", name)
	}
	rc, err := store.Get(ctx, name)
	if err != nil {
		return "", false, 0, err
	}
	defer rc.Close()
	in, err := openSealed(rc, key, name)
	if err != nil {
		return "", false, 0, err
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return "", false, 0, fmt.Errorf("log %s: not gzip: %w", name, err)
	}
	defer gz.Close()
	// tail keeps the last bytes read, between maxBytes and 2*maxBytes of them.
	tail := make([]byte, 0, 2*maxBytes)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := gz.Read(buf)
		size += int64(n)
		if size > maxLogSize {
			return "", false, size, fmt.Errorf("log %s is larger than %d bytes decompressed", name, maxLogSize)
		}
		for chunk := buf[:n]; len(chunk) > 0; {
			room := 2*maxBytes - len(tail)
			if room == 0 {
				tail = append(tail[:0], tail[len(tail)-maxBytes:]...)
				room = maxBytes
			}
			k := min(room, len(chunk))
			tail = append(tail, chunk[:k]...)
			chunk = chunk[k:]
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return "", false, size, fmt.Errorf("log %s: %w", name, rerr)
		}
	}
	if int64(len(tail)) < size || len(tail) > maxBytes {
		truncated = true
		tail = tail[len(tail)-min(len(tail), maxBytes):]
		// Start at a whole line; with none, at a whole rune.
		if i := strings.IndexByte(string(tail), '\n'); i >= 0 && i+1 < len(tail) {
			tail = tail[i+1:]
		}
		for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
			tail = tail[1:]
		}
	}
	return strings.ToValidUTF8(string(tail), "\uFFFD"), truncated, size, nil
}
