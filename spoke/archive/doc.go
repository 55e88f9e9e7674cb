// Package archive reads and writes Lifeboat's backup format.
//
// A backup is a folder of four files in a Store (an Azure Blob container in
// production, a directory in tests), at
// <prefix>/lifeboat/v1/backups/<source-cluster>/<backup-id>/ (see Path):
//
//	resources.tar.zst      resources/<group>/<version>/<resource>/<namespace|_cluster>/<name>.json
//	resource-list.json.gz  every item, in the same order as the tar entries
//	log.jsonl.gz           one JSON line per event
//	backup.json            written last: the commit marker, with sizes and sha256 of the others
//
// A Writer streams a backup into the store: nothing in this package holds a
// whole backup in memory. A Reader checks every byte against backup.json
// before it hands out an item, so a restore never applies anything from a
// backup that is incomplete, truncated or changed. docs/backup-format.md
// describes the format for people who read buckets without this package.
package archive
