package archive

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
)

// RestoresDir is the folder, in a backup's folder, that holds the logs of
// the restores of that backup: <backup folder>/restores/<cluster>/<namespace>/<name>-<uid>.jsonl.gz.
// It is not part of the backup: backup.json does not list it, and deleting
// the backup deletes it.
const RestoresDir = "restores"

// RestoreLogPath is where the log of restore namespace/name (UID uid) on
// cluster is kept, in the folder dir of the backup it restored.
func RestoreLogPath(dir, cluster, namespace, name, uid string) string {
	return fmt.Sprintf("%s/%s/%s/%s/%s-%s.jsonl.gz", dir, RestoresDir, cluster, namespace, name, uid)
}

// RestoreLogEntry is one line of a restore's log: LogEntry's fields and,
// on the line that gives an item's result, the result (created, updated,
// existed, leftOut or failed) and where the item went when that is not
// where it was.
type RestoreLogEntry struct {
	LogEntry
	Result string `json:"result,omitempty"`
	Target string `json:"target,omitempty"`
}

// MaxRestoreLogLines bounds the lines of a restore's log: past it, lines
// are counted, by level and result, and the last line says how many were
// left out of the log.
const MaxRestoreLogLines = 50_000

// RestoreLog spools a restore's log into a gzipped temporary file until
// Commit puts it into the store, so a restore of many objects holds none
// of it in memory. It is not safe for concurrent use.
type RestoreLog struct {
	file    *os.File
	gz      *gzip.Writer
	enc     *json.Encoder
	lines   int
	dropped map[string]int64
	err     error
}

// NewRestoreLog makes a log spooled in dir.
func NewRestoreLog(dir string) (*RestoreLog, error) {
	f, err := os.CreateTemp(dir, "restore-log-*.jsonl.gz")
	if err != nil {
		return nil, fmt.Errorf("restore log: %w", err)
	}
	gz := gzip.NewWriter(f)
	return &RestoreLog{file: f, gz: gz, enc: json.NewEncoder(gz), dropped: map[string]int64{}}, nil
}

// Add appends a line; messages are cut as a backup's log cuts them.
func (l *RestoreLog) Add(e RestoreLogEntry) {
	if l.err != nil {
		return
	}
	if l.lines >= MaxRestoreLogLines {
		key := string(e.Level)
		if e.Result != "" {
			key += " " + e.Result
		}
		l.dropped[key]++
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if len(e.Message) > maxLogMessage {
		e.Message = e.Message[:maxLogMessage] + "…"
	}
	l.lines++
	l.err = l.enc.Encode(e)
}

// Commit closes the log and puts it into store under name, encrypted to
// to when it is set (the key of the restore's target).
func (l *RestoreLog) Commit(ctx context.Context, store Store, name string, to *age.X25519Recipient) error {
	if len(l.dropped) > 0 {
		n := l.lines
		l.lines = 0 // the last line is written whatever the bound
		l.Add(RestoreLogEntry{LogEntry: LogEntry{Level: LevelWarning,
			Message: fmt.Sprintf("The log holds its first %d lines only; left out of it: %v", n, l.dropped)}})
	}
	if err := errors.Join(l.err, l.gz.Close()); err != nil {
		return fmt.Errorf("restore log: %w", err)
	}
	if _, err := l.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore log: %w", err)
	}
	var out io.Reader = bufio.NewReader(l.file)
	if to != nil {
		var err error
		if out, err = age.EncryptReader(out, to); err != nil {
			return fmt.Errorf("restore log: %w", err)
		}
	}
	if _, err := store.Put(ctx, name, out); err != nil {
		return fmt.Errorf("restore log %s: %w", name, err)
	}
	return nil
}

// Remove deletes the spooled file.
func (l *RestoreLog) Remove() {
	l.file.Close()
	os.Remove(l.file.Name())
}

// ReadRestoreLog reads the restore log name from store, at most max bytes
// of it once unzipped, decrypting it with key when it is encrypted.
func ReadRestoreLog(ctx context.Context, store Store, name string, max int64, key *age.X25519Identity) ([]RestoreLogEntry, error) {
	rc, err := store.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	in, err := openSealed(rc, key, name)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("restore log %s: %w", name, err)
	}
	dec := json.NewDecoder(io.LimitReader(gz, max))
	var out []RestoreLogEntry
	for {
		var e RestoreLogEntry
		err := dec.Decode(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("restore log %s: %w", name, err)
		}
		out = append(out, e)
	}
}
