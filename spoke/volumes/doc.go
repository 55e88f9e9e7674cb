// Package volumes backs up and restores the data of PersistentVolumeClaims
// with kopia (K8up's method 1, Velero's Kopia data mover).
//
// The spoke holds the repository: one per cluster and namespace, under
// RepositoriesPrefix in the BackupTarget's container, reached through the
// spoke's own Blob client (Workload Identity). No pod in an application
// namespace gets a storage credential or the repository's password. A mover
// pod in the PVC's namespace mounts the volume and serves its file tree over
// HTTP to the spoke, which chunks, deduplicates, encrypts and uploads it with
// kopia's snapshot uploader; on restore the spoke streams kopia's restore
// output as a tar stream that a mover unpacks into the new volume.
package volumes
