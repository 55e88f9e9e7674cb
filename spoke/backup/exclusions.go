package backup

import "encoding/json"

// What a backup never takes, whatever its selection says. Everything else
// that a backup can list and a restore can create is taken: pods and
// replica sets owned by controllers, controller revisions, service-account
// token secrets and the like are in the backup, as the API server shows
// them, and the restore decides what to recreate (it drops what the cluster
// regenerates). A backup keeps facts; leaving them out cannot be undone.

// requiredVerbs: a resource is backed up only if it can be listed and read
// (to back it up) and created and deleted (to restore it), as in Velero. This
// leaves out what only computes answers (metrics.k8s.io, componentstatuses,
// tokenreviews and the other review kinds, bindings).
var requiredVerbs = []string{"list", "get", "create", "delete"}

// excludedGroups are API groups whose objects are never backed up.
var excludedGroups = map[string]string{
	// Lifeboat's own records: restoring an ApplicationBackup would start a
	// backup, a BackupDeletion would delete one. The bucket is their catalog.
	"backup.lifeboat.dev": "Lifeboat's own records",
	"fleet.lifeboat.dev":  "Lifeboat's own records",
}

// keptResources are resources of an excluded group that are backed up all
// the same: a team's PreBackupPods belong to its application, start nothing
// by themselves, and a restore needs them back to run their restoreCommand.
var keptResources = map[resourceKey]bool{
	{"backup.lifeboat.dev", "prebackuppods"}: true,
}

// excludedResources are resources whose objects are never backed up.
var excludedResources = map[resourceKey]string{
	// Events are history, not state; the cluster records new ones.
	{"", "events"}:              "history, not state",
	{"events.k8s.io", "events"}: "history, not state",
	// Leases are leader-election locks and node heartbeats: true only at the
	// moment they were written, and a restored lock delays the election.
	{"coordination.k8s.io", "leases"}: "locks and heartbeats, true only when written",
	// Nodes and what the kubelets and the attach/detach controller keep about
	// them describe this cluster's machines; a restore cannot make machines.
	{"", "nodes"}:                              "this cluster's machines",
	{"storage.k8s.io", "csinodes"}:             "this cluster's machines",
	{"storage.k8s.io", "volumeattachments"}:    "this cluster's machines",
	{"storage.k8s.io", "csistoragecapacities"}: "this cluster's machines",
}

// excluded returns why k is never backed up, or "".
func excluded(k resourceKey) string {
	if why := excludedGroups[k.group]; why != "" && !keptResources[k] {
		return why
	}
	return excludedResources[k]
}

// Objects that Kubernetes makes from other objects, and that the restored
// cluster makes again: the Endpoints and EndpointSlices of Services with a
// selector, the IPAddresses that reserve Services' cluster IPs (a restored one
// would keep the new cluster from giving that IP to a Service), and the
// APIServices the API server registers for its own groups. Objects of the
// same resources that a person or another controller manages (e.g. the
// Endpoints of a Service without a selector) are backed up. The labels are
// the ones Kubernetes sets.
var regeneratedBy = map[resourceKey]struct {
	label    string
	managers []string
}{
	{"", "endpoints"}:                         {"endpoints.kubernetes.io/managed-by", []string{"endpoint-controller"}},
	{"discovery.k8s.io", "endpointslices"}:    {"endpointslice.kubernetes.io/managed-by", []string{"endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"}},
	{"networking.k8s.io", "ipaddresses"}:      {"ipaddress.kubernetes.io/managed-by", []string{"ipallocator.k8s.io"}},
	{"apiregistration.k8s.io", "apiservices"}: {"kube-aggregator.kubernetes.io/automanaged", []string{"onstart", "true"}},
}

// regenerated reports whether the object (raw JSON) of resource k is one a
// Kubernetes controller makes again; it reads the labels only for the
// resources in regeneratedBy.
func regenerated(k resourceKey, obj []byte) bool {
	rule, ok := regeneratedBy[k]
	if !ok {
		return false
	}
	var l labeled
	if err := json.Unmarshal(obj, &l); err != nil {
		return false
	}
	manager := l.Metadata.Labels[rule.label]
	for _, c := range rule.managers {
		if manager == c {
			return true
		}
	}
	return false
}
