package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func putGzip(t *testing.T, s Store, name, text string) {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write([]byte(text))
	gz.Close()
	if _, err := s.Put(context.Background(), name, &b); err != nil {
		t.Fatal(err)
	}
}

func TestLogTail(t *testing.T) {
	ctx := context.Background()
	s := NewDirStore(t.TempDir())
	var lines []string
	for i := range 1000 {
		lines = append(lines, fmt.Sprintf(`{"level":"info","message":"item %04d"}`, i))
	}
	whole := strings.Join(lines, "\n") + "\n"
	putGzip(t, s, "d/log.jsonl.gz", whole)

	text, truncated, size, err := LogTail(ctx, s, "d/log.jsonl.gz", 1<<20, nil)
	if err != nil || truncated || text != whole || size != int64(len(whole)) {
		t.Fatalf("whole log: truncated=%v size=%d err=%v, text equal=%v", truncated, size, err, text == whole)
	}
	text, truncated, size, err = LogTail(ctx, s, "d/log.jsonl.gz", 1000, nil)
	if err != nil || !truncated || size != int64(len(whole)) {
		t.Fatalf("cut log: truncated=%v size=%d err=%v", truncated, size, err)
	}
	if len(text) > 1000 || !strings.HasSuffix(whole, text) || !strings.HasPrefix(text, `{"level"`) || !strings.HasSuffix(text, "item 0999\"}\n") {
		t.Fatalf("cut log is not the last whole lines within 1000 bytes: %d bytes %q", len(text), text[:min(80, len(text))])
	}

	_, _, _, err = LogTail(ctx, s, "d/missing.jsonl.gz", 10, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing log: %v", err)
	}
	if _, err := s.Put(ctx, "d/plain", strings.NewReader("not gzip")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err = LogTail(ctx, s, "d/plain", 10, nil); err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Fatalf("plain file: %v", err)
	}

	// A gzip bomb stops at the bound, not at the end of the stream.
	defer func(old int64) { maxLogSize = old }(maxLogSize)
	maxLogSize = 1 << 20
	putGzip(t, s, "d/bomb.jsonl.gz", strings.Repeat("x", 4<<20))
	if _, _, size, err = LogTail(ctx, s, "d/bomb.jsonl.gz", 10, nil); err == nil || size > 2<<20 {
		t.Fatalf("bomb: size %d err %v", size, err)
	}
}

func TestCheckRestoreLogPath(t *testing.T) {
	dir := "lifeboat/v1/backups/src/b-1"
	good := RestoreLogPath(dir, "dst", "team-a", "r1", "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01")
	if err := CheckRestoreLogPath(dir, good); err != nil {
		t.Fatalf("a restore log made by RestoreLogPath: %v", err)
	}
	for _, bad := range []string{
		dir + "/" + LogFile,
		dir + "/resources.tar.zst",
		"lifeboat/v1/backups/other/b-2/restores/dst/team-a/r1-u.jsonl.gz",
		dir + "/restores/dst/team-a/../../../../other/b-2/log.jsonl.gz",
		dir + "/restores/dst/team-a/x/r1-u.jsonl.gz",
		dir + "/restores/dst/team-a/r1-u.json",
		dir + "/restores/Dst/team-a/r1-u.jsonl.gz",
		dir + "/restores/dst/team-a/..jsonl.gz",
		dir + "restores/dst/team-a/r1-u.jsonl.gz",
		"",
	} {
		if err := CheckRestoreLogPath(dir, bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
