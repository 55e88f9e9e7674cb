package dispatch

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Label keys on every ManifestWork that point back to the hub object it was made for.
const (
	LabelKind      = "fleet.lifeboat.dev/kind"
	LabelNamespace = "fleet.lifeboat.dev/namespace"
	LabelName      = "fleet.lifeboat.dev/name"
	LabelUID       = "fleet.lifeboat.dev/uid"
)

// hashLen is how many hex digits of SHA-256 end every name and every
// hashed label value: 64 bits, so that finding two inputs with one name
// (a tenant crafting a name that takes another tenant's spoke object) costs
// about 2^64 hashes, not the minutes that 40 bits took.
const hashLen = 16

// Name is the ManifestWork name for the hub object kind namespace/name (namespace
// empty for cluster-scoped objects): "lb-<kind>-<namespace>-<name>-<hash>",
// lower case, cut to 63 characters. The hash of the three inputs is always
// there because namespaces and names may contain dashes: without it
// team-a/x and team/a-x would share one work and overwrite each other.
func Name(kind, namespace, name string) string {
	readable := "lb-" + kind + "-"
	if namespace != "" {
		readable += namespace + "-"
	}
	readable += name
	return withHash(readable, kind+"/"+namespace+"/"+name, validation.DNS1123LabelMaxLength)
}

// Labels are the labels a ManifestWork carries for owner.
func Labels(owner HubObject) map[string]string {
	l := map[string]string{
		LabelKind: LabelValue(owner.Kind),
		LabelName: LabelValue(owner.Name),
		LabelUID:  LabelValue(string(owner.UID)),
	}
	if owner.Namespace != "" {
		l[LabelNamespace] = LabelValue(owner.Namespace)
	}
	return l
}

// LabelValue is s when s is a valid label value, otherwise a valid value made
// of as much of s as fits and a hash of all of s. Select works by the same
// function, e.g. client.MatchingLabels{LabelName: LabelValue(name)}.
func LabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	return withHash(s, s, validation.LabelValueMaxLength)
}

// withHash returns readable reduced to lower-case alphanumerics and dashes,
// cut so that "-<hash of key>" fits in max characters, with that suffix. The
// result is a DNS-1123 label and a valid label value.
func withHash(readable, key string, max int) string {
	sum := sha256.Sum256([]byte(key))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashLen]
	var b strings.Builder
	for _, r := range strings.ToLower(readable) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > max-len(suffix) {
		s = s[:max-len(suffix)]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return suffix[1:]
	}
	return s + suffix
}
