package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// What FuzzReader's data replaces. The decompressed variants let the fuzzer
// reach the tar and JSON parsers instead of stopping at zstd or gzip.
const (
	fuzzResources    = iota // resources.tar.zst as stored
	fuzzResourcesTar        // the tar inside resources.tar.zst
	fuzzList                // resource-list.json.gz as stored
	fuzzListJSON            // the JSON inside it
	fuzzLog                 // log.jsonl.gz as stored
	fuzzLogJSONL            // the JSON lines inside it
	fuzzManifest            // backup.json
	fuzzTargets
)

// fuzzLimits keep each run small; the checks are the same at any size.
var fuzzLimits = Limits{MaxObjectSize: 64 << 10, MaxResourcesSize: 4 << 20, MaxListSize: 1 << 20}

// FuzzReader feeds arbitrary bytes to the Reader as one of a backup's files,
// with backup.json's checksums left alone or recomputed to match (as someone
// who can write to the bucket could). The Reader must not panic, must say
// the backup is corrupt rather than fail otherwise, and must hand out items
// only from a backup that verifies, each one an object whose JSON matches
// its name.
func FuzzReader(f *testing.F) {
	base := newMemStore()
	items := sampleItems(8)
	writeBackup(f, base, testDir, items, []logLine{{LevelWarning, &ItemRef{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "team-0", Name: "settings-0"}, "Something"}})
	plain := map[int][]byte{
		fuzzResources:    base.get(testDir + "/" + ResourcesFile),
		fuzzResourcesTar: makeTar(f, tarEntriesOf(items)),
		fuzzList:         base.get(testDir + "/" + ResourceListFile),
		fuzzListJSON:     gunzip(f, base.get(testDir+"/"+ResourceListFile)),
		fuzzLog:          base.get(testDir + "/" + LogFile),
		fuzzLogJSONL:     gunzip(f, base.get(testDir+"/"+LogFile)),
		fuzzManifest:     base.get(testDir + "/" + ManifestFile),
	}
	for target, b := range plain {
		for _, reseal := range []bool{false, true} {
			f.Add(uint8(target), b, reseal)
			f.Add(uint8(target), b[:len(b)/2], reseal)
			flipped := bytes.Clone(b)
			flipped[len(b)/3] ^= 0x40
			f.Add(uint8(target), flipped, reseal)
		}
	}
	cm := named(configMaps, "team-0", "settings-0")
	f.Add(uint8(fuzzResourcesTar), makeTar(f, []tarEntry{regular("../etc/passwd", object(cm, nil))}), true)

	f.Fuzz(func(t *testing.T, target uint8, data []byte, resealed bool) {
		ctx := context.Background()
		store := base.clone()
		name := ""
		switch int(target) % fuzzTargets {
		case fuzzResources:
			name = ResourcesFile
		case fuzzResourcesTar:
			name, data = ResourcesFile, zstdEncoder.EncodeAll(data, nil)
		case fuzzList:
			name = ResourceListFile
		case fuzzListJSON:
			name, data = ResourceListFile, gzipped(data)
		case fuzzLog:
			name = LogFile
		case fuzzLogJSONL:
			name, data = LogFile, gzipped(data)
		case fuzzManifest:
			name, resealed = ManifestFile, false
		}
		store.set(testDir+"/"+name, data)
		if resealed {
			reseal(t, store)
		}

		r, err := Open(ctx, store, testDir)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("Open failed with an error that does not say why: %v", err)
			}
			return
		}
		r.Limits = fuzzLimits
		var got []Item
		itemsErr := r.Items(ctx, func(it Item) error { got = append(got, it); return nil })
		if itemsErr != nil && !errors.Is(itemsErr, ErrCorrupt) {
			t.Fatalf("Items failed with an error that does not say the backup is corrupt: %v", itemsErr)
		}
		if len(got) > 0 {
			r2, err := Open(ctx, store, testDir)
			if err != nil {
				t.Fatal(err)
			}
			r2.Limits = fuzzLimits
			if err := r2.Verify(ctx); err != nil {
				t.Fatalf("Items handed out %d items from a backup that does not verify: %v", len(got), err)
			}
			if itemsErr != nil {
				t.Fatalf("Items handed out %d items, then failed on unchanged files: %v", len(got), itemsErr)
			}
			for _, it := range got {
				if err := it.Ref().validate(true); err != nil {
					t.Fatalf("Items handed out an item with an invalid name: %v", err)
				}
				if it.Oversize > 0 {
					if it.Object != nil || it.Oversize <= fuzzLimits.MaxObjectSize {
						t.Fatalf("Items handed out %s as oversize (%d bytes) with an object of %d bytes", it.Ref(), it.Oversize, len(it.Object))
					}
					continue
				}
				if err := checkObject(it.Ref(), it.Object); err != nil {
					t.Fatalf("Items handed out %s whose object does not match: %v", it.Ref(), err)
				}
			}
		}
		if _, err := r.ResourceList(ctx); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ResourceList: %v", err)
		}
		if _, err := r.Log(ctx); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Log: %v", err)
		}
	})
}

func tarEntriesOf(items []Item) []tarEntry {
	var entries []tarEntry
	for _, it := range items {
		entries = append(entries, regular(it.Ref().entryName(), it.Object))
	}
	return entries
}

// checkObjectByMaps is checkObject written the slow, obvious way, with
// encoding/json maps; FuzzCheckObject holds the fast one to it.
func checkObjectByMaps(ref ItemRef, obj []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(obj, &top); err != nil || top == nil {
		return errors.New("not a JSON object")
	}
	var meta map[string]json.RawMessage
	if raw, ok := top["metadata"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return errors.New("metadata is not a JSON object")
		}
	}
	for _, f := range []struct {
		raw  json.RawMessage
		want string
	}{
		{top["apiVersion"], ref.apiVersion()},
		{top["kind"], ref.Kind},
		{meta["name"], ref.Name},
		{meta["namespace"], ref.Namespace},
	} {
		var got string
		if f.raw != nil {
			if err := json.Unmarshal(f.raw, &got); err != nil {
				return errors.New("not a string")
			}
		}
		if got != f.want {
			return errors.New("mismatch")
		}
	}
	return nil
}

// FuzzCheckObject: the one-pass identity check accepts exactly what the
// encoding/json version accepts.
func FuzzCheckObject(f *testing.F) {
	cm := named(configMaps, "shop", "a")
	for _, seed := range []string{
		string(object(cm, map[string]any{"x": []any{1, "two", map[string]any{"kind": "Secret"}}})),
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"},"metadata":{"name":"a"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":null,"metadata":{"name":"a","namespace":"shop"}}`,
		` { "apiVersion" : "v1" , "\u006bind" : "ConfigMap" , "metadata" : { "namespace" : "shop" , "name" : "a" , "labels":{"a":"b\"}"} } } `,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop","n":[1,2,{"x":true}],"o":-1.5e3}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","Kind":"Secret","metadata":{"name":"a","namespace":"shop"}}`,
		`{"apiVersion":1,"kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":"a"}`,
		`[1]`, `null`, `"x"`, `{}`, `{"apiVersion":"v1"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		fast, slow := checkObject(cm, obj), checkObjectByMaps(cm, obj)
		if (fast == nil) != (slow == nil) {
			t.Fatalf("checkObject says %v, the encoding/json version says %v, for %q", fast, slow, obj)
		}
	})
}
