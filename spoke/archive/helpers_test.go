package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
)

// object returns the JSON of a Kubernetes object that ref names, with data
// as its payload.
func object(ref ItemRef, data map[string]any) []byte {
	meta := map[string]any{"name": ref.Name, "uid": "0b1c" + fmt.Sprint(len(ref.Name)), "resourceVersion": "12345"}
	if ref.Namespace != "" {
		meta["namespace"] = ref.Namespace
	}
	obj := map[string]any{"apiVersion": ref.apiVersion(), "kind": ref.Kind, "metadata": meta}
	if data != nil {
		obj["data"] = data
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return b
}

func itemOf(ref ItemRef, data map[string]any) Item {
	return Item{Group: ref.Group, Version: ref.Version, Resource: ref.Resource, Kind: ref.Kind,
		Namespace: ref.Namespace, Name: ref.Name, Object: object(ref, data)}
}

var (
	configMaps  = ItemRef{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}
	secrets     = ItemRef{Version: "v1", Resource: "secrets", Kind: "Secret"}
	namespaces  = ItemRef{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	deployments = ItemRef{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment"}
	roles       = ItemRef{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles", Kind: "ClusterRole"}
	widgets     = ItemRef{Group: "example.com", Version: "v1alpha1", Resource: "widgets", Kind: "Widget"}
)

func named(kind ItemRef, namespace, name string) ItemRef {
	kind.Namespace, kind.Name = namespace, name
	return kind
}

// sampleItems returns n items of several resources, namespaced and
// cluster-scoped, including names that need a PAX header or contain ':'.
func sampleItems(n int) []Item {
	var items []Item
	for i := 0; len(items) < n; i++ {
		ns := fmt.Sprintf("team-%d", i%3)
		refs := []ItemRef{
			named(configMaps, ns, fmt.Sprintf("settings-%d", i)),
			named(secrets, ns, fmt.Sprintf("token-%d", i)),
			named(deployments, ns, fmt.Sprintf("web-%d", i)),
			named(widgets, ns, fmt.Sprintf("w%d.example", i)),
			named(roles, "", fmt.Sprintf("system:aggregate-%d", i)),
			named(namespaces, "", fmt.Sprintf("ns-%d", i)),
		}
		if i == 0 {
			refs = append(refs, named(configMaps, ns, strings.Repeat("long-name.", 25)+"x"))
		}
		for _, ref := range refs {
			if len(items) < n {
				items = append(items, itemOf(ref, map[string]any{"index": i, "value": strings.Repeat("v", i%50)}))
			}
		}
	}
	return items
}

const testDir = "team-a/lifeboat/v1/backups/spoke-1/b1"

var testMeta = Meta{
	Owner:           Owner{Hub: &HubRef{Namespace: "tenant-a", Name: "nightly-1", UID: "7f6c1c3e-3a3a-4c5b-9a3b-5f7e8d9a0b1c"}},
	Spec:            json.RawMessage(`{"target":"weu-primary","selection":{"namespaces":["team-0"]}}`),
	LifeboatVersion: "v0.1.0-test",
}

type logLine struct {
	level Level
	item  *ItemRef
	msg   string
}

// writeBackup writes a whole backup and fails the test on any error.
func writeBackup(t testing.TB, store Store, dir string, items []Item, logs []logLine) *Manifest {
	t.Helper()
	return writeBackupWith(t, store, dir, testMeta, items, logs)
}

// writeBackupWith is writeBackup with meta.
func writeBackupWith(t testing.TB, store Store, dir string, meta Meta, items []Item, logs []logLine) *Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := NewWriter(ctx, store, dir, meta)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, it := range items {
		if err := w.Add(it); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	for _, l := range logs {
		w.Log(l.level, l.item, l.msg)
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return m
}

// memStore is a Store in a map, for tests that make many small backups.
type memStore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newMemStore() *memStore { return &memStore{blobs: map[string][]byte{}} }

func (s *memStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return int64(len(b)), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[name] = b
	return int64(len(b)), nil
}

func (s *memStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[name]
	if !ok {
		return nil, fmt.Errorf("mem store: %s: %w", name, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.blobs {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (s *memStore) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	names, err := s.List(ctx, prefix)
	if err != nil || len(names) == 0 {
		return err
	}
	return fn(names)
}

func (s *memStore) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blobs, name)
	return nil
}

func (s *memStore) clone() *memStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newMemStore()
	for k, v := range s.blobs {
		c.blobs[k] = bytes.Clone(v)
	}
	return c
}

func (s *memStore) get(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blobs[name]
}

func (s *memStore) set(name string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[name] = b
}
