package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxClusterName is the longest cluster name: it is also a namespace name.
const maxClusterName = 63

// ClusterName is the fleet's name for shoot in project: "<project>--<shoot>",
// like the middle of Gardener's technical ID "shoot--<project>--<shoot>".
//
// It is stable (it depends on nothing but the two names), a DNS label, and
// unique: Gardener forbids "--" inside project and shoot names and neither may
// start or end with '-', so the first "--" always separates the two. Gardener
// limits projects to 10 characters and project plus shoot to 21, so real names
// have at most 23 characters. A longer combination (only possible on an API
// server without Gardener's admission plugins) is cut to 54 characters and
// followed by '-' and 8 hex digits of a SHA-256 of "<project>/<shoot>".
func ClusterName(project, shoot string) string {
	name := project + "--" + shoot
	if len(name) <= maxClusterName {
		return name
	}
	sum := sha256.Sum256([]byte(project + "/" + shoot))
	return strings.TrimRight(name[:maxClusterName-9], "-") + "-" + hex.EncodeToString(sum[:4])
}

// ProjectNamespace is the namespace of a Gardener project: garden-<project>,
// and garden for the project named garden.
func ProjectNamespace(project string) string {
	if project == "garden" {
		return "garden"
	}
	return "garden-" + project
}

// projectOfNamespace is the inverse of ProjectNamespace; a namespace outside
// the convention is its own project name.
func projectOfNamespace(ns string) string {
	if ns == "garden" {
		return ns
	}
	if p, ok := strings.CutPrefix(ns, "garden-"); ok && p != "" {
		return p
	}
	return ns
}
