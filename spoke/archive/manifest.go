package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
)

// FormatVersion is the highest backup.json formatVersion this package reads.
// Readers ignore fields they do not know; a change that an older reader must
// not ignore bumps it. The Writer writes 1, or 2 for an encrypted backup
// (Encryption), which Lifeboats that read only 1 refuse.
const FormatVersion = formatVersionEncrypted

// formatVersionPlain is the formatVersion of a backup that is not encrypted:
// every Lifeboat reads it.
const formatVersionPlain = 1

// Manifest is backup.json: what the backup is, whose it is, and what its
// other files must contain.
type Manifest struct {
	FormatVersion int    `json:"formatVersion"`
	BackupID      string `json:"backupID"`
	SourceCluster string `json:"sourceCluster"`
	Owner         Owner  `json:"owner"`
	// Spec is the ApplicationBackup spec the backup was made from, as JSON.
	Spec                json.RawMessage `json:"spec,omitempty"`
	StartTimestamp      time.Time       `json:"startTimestamp"`
	CompletionTimestamp time.Time       `json:"completionTimestamp"`
	LifeboatVersion     string          `json:"lifeboatVersion"`
	Counts              Counts          `json:"counts"`
	// Files holds the size and sha256 of every other file, by file name.
	Files map[string]FileInfo `json:"files"`
	// Volumes are the snapshots of the PersistentVolumeClaims' data.
	Volumes []VolumeSnapshot `json:"volumes,omitempty"`
	// Commands are the outputs of backup commands (pod annotations and
	// PreBackupPods). Backups written before backup commands have none;
	// older readers ignore them.
	Commands []CommandOutput `json:"commands,omitempty"`
	// Encryption, when set, says the other files are encrypted, and to which
	// key (formatVersion 2).
	Encryption *Encryption `json:"encryption,omitempty"`

	// SHA256 is the sha256 (hex) of backup.json's bytes as Writer.Close wrote
	// them or Open read them; it is not part of backup.json.
	SHA256 string `json:"-"`
}

// Owner is who the backup belongs to: a hub Backup, or a team that made its
// own ApplicationBackup in its namespace. Exactly one is set.
type Owner struct {
	Hub       *HubRef `json:"hub,omitempty"`
	Namespace string  `json:"namespace,omitempty"`
}

// HubRef is a Backup on the hub, in its tenant namespace.
type HubRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// Counts says what a backup holds.
type Counts struct {
	Items int64 `json:"items"`
	// ObjectBytes is the sum of the items' JSON sizes, before compression.
	ObjectBytes int64 `json:"objectBytes"`
	// Warnings and Errors count the log lines of those levels.
	Warnings int64 `json:"warnings"`
	Errors   int64 `json:"errors"`
	// Resources counts items by "<group>/<version>/<resource>", the core
	// group written as "core" (as in entry names).
	Resources map[string]int64 `json:"resources"`
}

// VolumeSnapshot is the data of one PersistentVolumeClaim: a kopia snapshot
// in the volume repository of the claim's namespace.
type VolumeSnapshot struct {
	Namespace string `json:"namespace"`
	Claim     string `json:"claim"`
	// Snapshot is the kopia manifest ID of the snapshot.
	Snapshot string `json:"snapshot"`
	// Repository is the repository's folder, relative to the target's prefix.
	Repository string `json:"repository"`
	// Bytes and Files are the size of the volume's files and how many there are.
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// CommandOutput is the standard output of one backup command: a kopia
// snapshot holding one file, File, in the volume repository of Namespace.
type CommandOutput struct {
	Namespace string `json:"namespace"`
	// Pod is the pod the command ran in.
	Pod string `json:"pod"`
	// Owner is the pod's top controller as "<Kind>/<name>" (e.g.
	// "Deployment/db"), or "" for a pod that no controller owns.
	Owner     string `json:"owner,omitempty"`
	Container string `json:"container"`
	// File is the output's file name in the snapshot.
	File string `json:"file"`
	// PreBackupPod names the PreBackupPod the command came from; "" for a
	// pod's backup-command annotation.
	PreBackupPod string `json:"preBackupPod,omitempty"`
	// Snapshot is the kopia manifest ID of the snapshot.
	Snapshot string `json:"snapshot"`
	// Repository is the repository's folder, relative to the target's prefix.
	Repository string `json:"repository"`
	Bytes      int64  `json:"bytes"`
}

// MaxCommandFile bounds the length of a command output's file name.
const MaxCommandFile = 128

// ValidateCommandFile checks a command output's file name: a plain name of
// at most MaxCommandFile bytes, with no path separator, no control
// character, and not "." or "..".
func ValidateCommandFile(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > MaxCommandFile:
		return fmt.Errorf("must be at most %d characters", MaxCommandFile)
	case name == "." || name == "..":
		return fmt.Errorf("must not be %q", name)
	case strings.ContainsAny(name, "/\\"):
		return errors.New("must be a plain file name, without / or \\")
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || !utf8.ValidString(name):
		return errors.New("must be valid UTF-8 without control characters")
	}
	return nil
}

func (c CommandOutput) validate() error {
	switch {
	case !isDNSLabel(c.Namespace):
		return fmt.Errorf("namespace %q: must be a namespace name", c.Namespace)
	case !isDNSSubdomain(c.Pod):
		return fmt.Errorf("pod %q: must be a pod name", c.Pod)
	case !isDNSLabel(c.Container):
		return fmt.Errorf("container %q: must be a container name", c.Container)
	case c.Owner != "" && !isOwner(c.Owner):
		return fmt.Errorf("owner %q: must be <Kind>/<name>", c.Owner)
	case c.PreBackupPod != "" && !isDNSSubdomain(c.PreBackupPod):
		return fmt.Errorf("preBackupPod %q: must be an object name", c.PreBackupPod)
	case c.Snapshot == "" || c.Repository == "":
		return errors.New("snapshot and repository must be set")
	case c.Bytes < 0:
		return errors.New("bytes must not be negative")
	}
	if err := ValidateCommandFile(c.File); err != nil {
		return fmt.Errorf("file %q: %w", c.File, err)
	}
	return nil
}

// isOwner says whether s is "<Kind>/<name>" of an object.
func isOwner(s string) bool {
	kind, name, ok := strings.Cut(s, "/")
	return ok && kind != "" && len(kind) <= 63 && strings.IndexFunc(kind, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 && isDNSSubdomain(name)
}

// Volume returns the snapshot of the claim namespace/name, if the backup has one.
func (m *Manifest) Volume(namespace, name string) (VolumeSnapshot, bool) {
	for _, v := range m.Volumes {
		if v.Namespace == namespace && v.Claim == name {
			return v, true
		}
	}
	return VolumeSnapshot{}, false
}

// Snapshots are the kopia snapshots the backup names, of volume data and
// of backup commands' output, by namespace (each namespace's repository).
func (m *Manifest) Snapshots() map[string][]string {
	out := map[string][]string{}
	for _, v := range m.Volumes {
		out[v.Namespace] = append(out[v.Namespace], v.Snapshot)
	}
	for _, c := range m.Commands {
		out[c.Namespace] = append(out[c.Namespace], c.Snapshot)
	}
	return out
}

// FileInfo is the size (as stored, compressed) and sha256 of a file.
type FileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var (
	// ErrIncomplete: the folder has no backup.json, so the backup never finished.
	ErrIncomplete = errors.New("backup is incomplete")
	// ErrNewerFormat: backup.json has a formatVersion this Lifeboat cannot read.
	ErrNewerFormat = errors.New("backup was written by a newer Lifeboat")
	// ErrCorrupt: a file is missing, malformed, or does not match backup.json.
	ErrCorrupt = errors.New("backup is corrupt")
	// ErrExists: NewWriter found a finished backup in the folder.
	ErrExists = errors.New("backup already exists")
	// ErrInvalidItem: Writer.Add refused the item; the Writer is still usable.
	ErrInvalidItem = errors.New("invalid item")
)

// archiveError carries a message written for people, and a kind (one of the
// Err values above) for errors.Is; cause, when set, is wrapped too.
type archiveError struct {
	kind  error
	msg   string
	cause error
}

func (e *archiveError) Error() string { return e.msg }
func (e *archiveError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func newError(kind, cause error, format string, args ...any) error {
	return &archiveError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// maxManifestSize bounds backup.json; a spec and per-resource counts fit
// in a small fraction of it.
const maxManifestSize = 4 << 20

// parseManifest decodes and checks backup.json of backup id.
func parseManifest(id string, b []byte) (*Manifest, error) {
	// Read formatVersion alone first: a newer format may not decode as this one.
	var version struct {
		FormatVersion *json.RawMessage `json:"formatVersion"`
	}
	if err := json.Unmarshal(b, &version); err != nil {
		return nil, newError(ErrCorrupt, err, "backup %s: backup.json is not valid JSON: %v", id, err)
	}
	if version.FormatVersion == nil {
		return nil, newError(ErrCorrupt, nil, "backup %s: backup.json has no formatVersion", id)
	}
	var v int
	if err := json.Unmarshal(*version.FormatVersion, &v); err != nil || v < 1 {
		return nil, newError(ErrCorrupt, nil, "backup %s: backup.json: formatVersion %s is not a format version", id, *version.FormatVersion)
	}
	if v > FormatVersion {
		return nil, newError(ErrNewerFormat, nil, "backup %s was written by a newer Lifeboat (format %d); this Lifeboat reads format %d", id, v, FormatVersion)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, newError(ErrCorrupt, err, "backup %s: backup.json is malformed: %v", id, err)
	}
	if err := m.validate(); err != nil {
		return nil, newError(ErrCorrupt, err, "backup %s: backup.json: %v", id, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if err := validateCluster(m.SourceCluster); err != nil {
		return fmt.Errorf("sourceCluster: %w", err)
	}
	if err := validateBackupID(m.BackupID); err != nil {
		return fmt.Errorf("backupID: %w", err)
	}
	if err := m.Owner.validate(); err != nil {
		return err
	}
	if len(m.Spec) > 0 && !json.Valid(m.Spec) {
		return errors.New("spec is not valid JSON")
	}
	if m.Encryption != nil {
		if _, err := age.ParseX25519Recipient(m.Encryption.Recipient); err != nil {
			return fmt.Errorf("encryption.recipient %q: is not an age X25519 recipient (age1...)", m.Encryption.Recipient)
		}
	}
	if (m.Encryption != nil) != (m.FormatVersion >= formatVersionEncrypted) {
		return fmt.Errorf("formatVersion %d does not match encryption (formatVersion %d is encrypted, %d is not)", m.FormatVersion, formatVersionEncrypted, formatVersionPlain)
	}
	for _, name := range []string{ResourcesFile, ResourceListFile, LogFile} {
		f, ok := m.Files[name]
		if !ok {
			return fmt.Errorf("files has no entry for %s", name)
		}
		if f.Size < 0 {
			return fmt.Errorf("files[%s].size is negative", name)
		}
		if !isSHA256(f.SHA256) {
			return fmt.Errorf("files[%s].sha256 %q is not 64 lowercase hex digits", name, f.SHA256)
		}
	}
	for i, cmd := range m.Commands {
		if err := cmd.validate(); err != nil {
			return fmt.Errorf("commands[%d]: %w", i, err)
		}
	}
	c := m.Counts
	if c.Items < 0 || c.ObjectBytes < 0 || c.Warnings < 0 || c.Errors < 0 {
		return errors.New("counts must not be negative")
	}
	var sum int64
	for key, n := range c.Resources {
		if !isResourceKey(key) {
			return fmt.Errorf("counts.resources: %q is not <group>/<version>/<resource>", key)
		}
		if n <= 0 {
			return fmt.Errorf("counts.resources[%s] is %d, want more than 0", key, n)
		}
		sum += n
	}
	if sum != c.Items {
		return fmt.Errorf("counts.resources add up to %d, but counts.items is %d", sum, c.Items)
	}
	return nil
}

func (o Owner) validate() error {
	switch {
	case o.Hub == nil && o.Namespace == "":
		return errors.New("owner: set either hub (a hub Backup) or namespace (a team's own backup)")
	case o.Hub != nil && o.Namespace != "":
		return errors.New("owner: set hub or namespace, not both")
	case o.Namespace != "" && !isDNSLabel(o.Namespace):
		return fmt.Errorf("owner.namespace %q: must be a namespace name", o.Namespace)
	case o.Hub != nil && !isDNSLabel(o.Hub.Namespace):
		return fmt.Errorf("owner.hub.namespace %q: must be a namespace name", o.Hub.Namespace)
	case o.Hub != nil && !isDNSSubdomain(o.Hub.Name):
		return fmt.Errorf("owner.hub.name %q: must be an object name", o.Hub.Name)
	case o.Hub != nil && len(o.Hub.UID) > 36:
		return fmt.Errorf("owner.hub.uid %q: must be at most 36 characters", o.Hub.UID)
	}
	return nil
}

func isResourceKey(key string) bool {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return false
	}
	g := parts[0]
	if g == coreGroupDir {
		g = ""
	} else if g == "" {
		return false
	}
	return ItemRef{Group: g, Version: parts[1], Resource: parts[2], Name: "x"}.validate(false) == nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
