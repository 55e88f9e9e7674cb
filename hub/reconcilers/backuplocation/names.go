package backuplocation

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TargetName is the name of the BackupTarget that BackupLocation
// namespace/name becomes on a spoke, and what spoke objects sent for the
// location refer to: "<namespace>-<name>-<hash>", DNS-1123, at most 63
// characters. The hash of namespace and name is always there: BackupTargets
// are cluster-scoped, and without it team-a/x and team/a-x would share one
// target, so one tenant could overwrite another's.
func TargetName(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	var b strings.Builder
	for _, r := range strings.ToLower(namespace + "-" + name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if max := validation.DNS1123LabelMaxLength - len(suffix); len(s) > max {
		s = s[:max]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return suffix[1:]
	}
	return s + suffix
}
