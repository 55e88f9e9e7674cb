package volumes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/content"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Password is the password of the repository of namespace on cluster in
// target's container. With the target's encryption key (docs/encryption.md)
// it is derived from that key (archive.RepositoryPassword), so only clusters
// that hold the key can read or write the volume data, and each repository
// has a password of its own. Without a key it is derived from stable,
// non-secret data (the storage account, container and prefix, the same on
// every cluster that uses the location): it keeps kopia's format working but
// protects nothing against whoever can read the container.
func Password(t *backupv1alpha1.BackupTarget, key *age.X25519Identity, cluster, namespace string) string {
	if key != nil {
		return archive.RepositoryPassword(key, cluster+"/"+namespace)
	}
	az := t.Spec.Azure
	sum := sha256.Sum256([]byte("lifeboat volume repository placeholder password\x00" + az.StorageAccount + "\x00" + az.Container + "\x00" + az.Prefix))
	return hex.EncodeToString(sum[:])
}

// ErrWrongPassword is wrapped by Open's error when the repository exists
// with another password.
var ErrWrongPassword = errors.New("the volume repository's password is not the one given")

// Repository is an open volume data repository; Close it.
type Repository struct {
	repo.Repository
	storage *Storage
	dir     string // kopia's configuration and caches
}

// Open opens the repository of namespace on cluster in blobs, creating it
// if it does not exist yet, with password.
func Open(ctx context.Context, blobs Blobs, cluster, namespace, password string) (*Repository, error) {
	st, err := NewStorage(blobs, cluster, namespace)
	if err != nil {
		return nil, err
	}
	r := &Repository{storage: st}
	ok := false
	defer func() {
		if !ok {
			r.release()
		}
	}()
	if r.dir, err = os.MkdirTemp("", "lifeboat-volumes-"); err != nil {
		return nil, err
	}
	config := filepath.Join(r.dir, "repository.config")
	opts := &repo.ConnectOptions{CachingOptions: content.CachingOptions{
		CacheDirectory:        filepath.Join(r.dir, "cache"),
		ContentCacheSizeBytes: 64 << 20, MetadataCacheSizeBytes: 64 << 20,
	}, ClientOptions: clientOptions(cluster)}
	err = repo.Connect(ctx, config, st, password, opts)
	if errors.Is(err, repo.ErrRepositoryNotInitialized) {
		err = repo.Initialize(ctx, st, &repo.NewRepositoryOptions{}, password)
		if err == nil || errors.Is(err, repo.ErrAlreadyInitialized) { // another run created it meanwhile
			err = repo.Connect(ctx, config, st, password, opts)
		}
	}
	if errors.Is(err, repo.ErrInvalidPassword) {
		return nil, fmt.Errorf("opening the volume repository %s: %w", st.Prefix(), ErrWrongPassword)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the volume repository %s: %w", st.Prefix(), err)
	}
	if r.Repository, err = repo.Open(ctx, config, password, &repo.Options{DisableInternalLog: true}); err != nil {
		return nil, fmt.Errorf("opening the volume repository %s: %w", st.Prefix(), err)
	}
	ok = true
	return r, nil
}

// OpenNamed opens the repository of namespace on cluster that a backup.json
// names as repository, which must be that repository's folder: a backup
// cannot point a restore elsewhere.
func OpenNamed(ctx context.Context, blobs Blobs, cluster, namespace, repository, password string) (*Repository, error) {
	want, err := archive.RepositoryPath(cluster, namespace)
	if err != nil {
		return nil, err
	}
	if repository != want {
		return nil, fmt.Errorf("backup.json names repository %q for namespace %s of cluster %s; want %q", repository, namespace, cluster, want)
	}
	return Open(ctx, blobs, cluster, namespace, password)
}

// Prefix is the repository's folder in the target, ending in '/'.
func (r *Repository) Prefix() string { return r.storage.Prefix() }

// Close closes the repository and removes its local configuration and caches.
func (r *Repository) Close(ctx context.Context) error {
	err := r.Repository.Close(ctx)
	r.release()
	return err
}

func (r *Repository) release() {
	r.storage.Release()
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}
