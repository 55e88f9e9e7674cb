package archive

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The files of a backup, in its folder.
const (
	ResourcesFile    = "resources.tar.zst"
	ResourceListFile = "resource-list.json.gz"
	LogFile          = "log.jsonl.gz"
	// ManifestFile is written last; a folder without it is an incomplete backup.
	ManifestFile = "backup.json"
)

// backupsDir is the format's root under a location's prefix; the v1 is the
// layout's version, not formatVersion, and changes only if the layout does.
const backupsDir = dataDir + "/v1/backups"

// dataDir is the folder under a target's prefix that holds all of Lifeboat's
// data; no prefix has a segment of that name, so no target's prefix lies
// inside another's data.
const dataDir = "lifeboat"

// Path returns the folder of a backup: <prefix>/lifeboat/v1/backups/<cluster>/<backupID>,
// without a trailing slash. prefix may be empty.
func Path(prefix, cluster, backupID string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	if err := validateCluster(cluster); err != nil {
		return "", err
	}
	if err := validateBackupID(backupID); err != nil {
		return "", err
	}
	p := backupsDir + "/" + cluster + "/" + backupID
	if prefix != "" {
		p = prefix + "/" + p
	}
	return p, nil
}

// RepositoriesDir is the folder, beside the backups' and under a target's
// prefix, of the volume data repositories: <cluster>/<namespace>/ each.
// Listings and deletions of backups never reach into it.
const RepositoriesDir = dataDir + "/v1/repositories"

// RepositoryPath returns the folder of the volume data repository of
// namespace on cluster, relative to the target's prefix, ending in '/'.
func RepositoryPath(cluster, namespace string) (string, error) {
	if err := validateCluster(cluster); err != nil {
		return "", err
	}
	if !isDNSLabel(namespace) {
		return "", fmt.Errorf("namespace %q: must be a namespace name", namespace)
	}
	return RepositoriesDir + "/" + cluster + "/" + namespace + "/", nil
}

// ParsePath splits a backup folder made by Path into its parts.
func ParsePath(dir string) (prefix, cluster, backupID string, err error) {
	segs := strings.Split(dir, "/")
	n := len(segs)
	if n < 5 || strings.Join(segs[n-5:n-2], "/") != backupsDir {
		return "", "", "", fmt.Errorf("%q is not a backup folder: want <prefix>/%s/<cluster>/<backup-id>", dir, backupsDir)
	}
	prefix, cluster, backupID = strings.Join(segs[:n-5], "/"), segs[n-2], segs[n-1]
	if err := ValidatePrefix(prefix); err != nil {
		return "", "", "", err
	}
	if err := validateCluster(cluster); err != nil {
		return "", "", "", err
	}
	if err := validateBackupID(backupID); err != nil {
		return "", "", "", err
	}
	return prefix, cluster, backupID, nil
}

// The messages are the ones the CRDs give for the same fields (docs/api.md).

// ValidatePrefix checks a target's prefix as the CRDs do: a relative path
// of letters, digits, '.', '_', '~' and '-', without '.', '..' or lifeboat
// segments. Empty is the container's root.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("prefix %q: prefix must be a relative path: remove the leading '/'", prefix)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q: prefix must not contain '.' or '..' path segments", prefix)
		}
		if seg == dataDir {
			return fmt.Errorf("prefix %q: prefix must not contain a '%s' path segment: Lifeboat keeps its data under <prefix>/%s/, so such a prefix could lie inside another location's backups", prefix, dataDir, dataDir)
		}
		if seg == "" || strings.IndexFunc(seg, func(r rune) bool { return !isPrefixChar(r) }) >= 0 {
			return fmt.Errorf("prefix %q: prefix may contain only letters, digits, '.', '_', '~' and '-', with single '/' between segments and no trailing '/'", prefix)
		}
	}
	return nil
}

func isPrefixChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._~-", r)
}

func validateCluster(cluster string) error {
	if !isDNSLabel(cluster) {
		return fmt.Errorf("cluster %q: must be a cluster name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", cluster)
	}
	return nil
}

func validateBackupID(id string) error {
	if len(id) > 128 || !isLowerAlnumWith(id, "-.") {
		return fmt.Errorf("backup ID %q: must be a backup ID: at most 128 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", id)
	}
	return nil
}

// isLowerAlnumWith reports whether s is non-empty, made of lowercase letters,
// digits and the runes in inner, and starts and ends with a letter or digit.
func isLowerAlnumWith(s, inner string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || strings.IndexByte(inner, c) < 0) {
			return false
		}
	}
	return true
}

// isDNSLabel: RFC 1123 label, as Kubernetes validates namespaces.
func isDNSLabel(s string) bool {
	return len(s) <= 63 && isLowerAlnumWith(s, "-")
}

// isDNSSubdomain: RFC 1123 subdomain, as Kubernetes validates API groups.
func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isDNSLabel(label) {
			return false
		}
	}
	return true
}

// isObjectName accepts what the API server accepts as a name in a URL path
// (not "." or "..", no '/' or '%'), and nothing a tar reader or a terminal
// could misread: no control characters, valid UTF-8, at most 253 bytes.
func isObjectName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 253 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' || r == '%' {
			return false
		}
	}
	return true
}

// isKind: an identifier such as ConfigMap.
func isKind(s string) bool {
	if s == "" || len(s) > 63 || !(s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
