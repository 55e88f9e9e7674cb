package restore

import (
	"encoding/json"
	"strings"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// neverRestored returns why objects of the item's resource are never
// restored, or "". The backup leaves most of them out already; a restore
// does not rely on that.
func neverRestored(ref archive.ItemRef) string {
	switch ref.Group {
	case "backup.lifeboat.dev", "fleet.lifeboat.dev":
		if ref.Group+"/"+ref.Resource == "backup.lifeboat.dev/prebackuppods" {
			break // a team's, part of its application: they start nothing by themselves
		}
		return "Lifeboat's own objects, which would start backups and restores of their own"
	case "", "events.k8s.io":
		if ref.Resource == "events" {
			return "events, which are history, not state"
		}
	}
	switch ref.Group + "/" + ref.Resource {
	case "coordination.k8s.io/leases":
		return "leases, which are locks and heartbeats true only when written"
	case "/nodes", "storage.k8s.io/csinodes", "storage.k8s.io/volumeattachments", "storage.k8s.io/csistoragecapacities":
		return "objects that describe the machines of the backed-up cluster"
	}
	return ""
}

// Labels of the Endpoints and EndpointSlices that Kubernetes controllers make.
var endpointControllers = map[string][2]string{
	"/endpoints":                      {"endpoints.kubernetes.io/managed-by", "endpoint-controller"},
	"discovery.k8s.io/endpointslices": {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"},
}

// regenerated returns why the cluster makes this object again by itself, so
// that restoring it would make a duplicate or a conflict, or "".
func regenerated(ref archive.ItemRef, obj map[string]any) string {
	key := ref.Group + "/" + ref.Resource
	switch key {
	case "/pods", "apps/replicasets", "batch/jobs", "apps/controllerrevisions":
		if hasController(obj) {
			return "objects that their controller (a Deployment, StatefulSet, CronJob, ...) makes again"
		}
	case "/endpoints", "discovery.k8s.io/endpointslices":
		rule := endpointControllers[key]
		manager := stringMap(obj, "metadata", "labels")[rule[0]]
		if manager == rule[1] || manager == "endpointslicemirroring-controller.k8s.io" {
			return "endpoints that the Kubernetes endpoint controllers make again for their Services"
		}
	case "/secrets":
		if str(obj, "type") == "kubernetes.io/service-account-token" {
			return "service-account token Secrets, which the cluster issues again"
		}
	case "/configmaps":
		if ref.Name == "kube-root-ca.crt" {
			return "the kube-root-ca.crt ConfigMaps, which every cluster publishes in every namespace"
		}
	case "/serviceaccounts":
		if ref.Name == "default" && !hasUserContent(obj) {
			return "default ServiceAccounts without anything a person set, which every namespace gets"
		}
	}
	return ""
}

// lastApplied is the annotation in which kubectl apply keeps what it applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// mapLastApplied maps the namespace (a Namespace's name) inside the
// last-applied configuration of an object restored into another namespace,
// so that the next kubectl apply compares against what it applied, where it
// now is. One that does not decode stays as it is: it is the user's.
func mapLastApplied(ref archive.ItemRef, meta map[string]any, mapNS func(string) string) {
	ann := mapOf(meta, "annotations")
	s, ok := ann[lastApplied].(string)
	if !ok {
		return
	}
	key, from := "namespace", ref.Namespace
	if isNamespace(ref) {
		key, from = "name", ref.Name
	}
	if from == "" || mapNS(from) == from {
		return
	}
	cfg, err := decode([]byte(s))
	if err != nil {
		return
	}
	m := mapOf(cfg, "metadata")
	if m == nil || m[key] != from {
		return
	}
	m[key] = mapNS(from)
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(cfg) == nil {
		ann[lastApplied] = strings.TrimSuffix(b.String(), "\n")
	}
}

func hasController(obj map[string]any) bool {
	for _, o := range list(obj, "metadata", "ownerReferences") {
		if ref, ok := o.(map[string]any); ok && ref["controller"] == true {
			return true
		}
	}
	return false
}

// hasUserContent reports whether a ServiceAccount carries something a person
// set, beyond what the cluster gives every ServiceAccount.
func hasUserContent(obj map[string]any) bool {
	if len(list(obj, "imagePullSecrets")) > 0 || len(list(obj, "secrets")) > 0 || obj["automountServiceAccountToken"] != nil {
		return true
	}
	meta, _ := obj["metadata"].(map[string]any)
	return len(mapOf(meta, "labels")) > 0 || len(mapOf(meta, "annotations")) > 0
}

// isDefaultServiceAccount: the ServiceAccount every namespace gets.
func isDefaultServiceAccount(ref archive.ItemRef) bool {
	return ref.Group == "" && ref.Resource == "serviceaccounts" && ref.Name == "default"
}

func isNamespace(ref archive.ItemRef) bool {
	return ref.Group == "" && ref.Resource == "namespaces"
}

// droppedMetadata are the fields of metadata that the cluster sets.
var droppedMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink",
}

// droppedAnnotations are annotations that tools and controllers write about
// the object's life in the backed-up cluster. kubectl's last-applied
// configuration is not one: it stays, so that kubectl apply keeps working
// after a restore (see mapLastApplied).
var droppedAnnotations = []string{
	"deployment.kubernetes.io/revision",
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.kubernetes.io/selected-node",
	"volume.kubernetes.io/storage-provisioner",
	"volume.beta.kubernetes.io/storage-provisioner",
}

// Labels a Job's controller generates from the Job's UID.
var jobUIDLabels = []string{"controller-uid", "batch.kubernetes.io/controller-uid"}

// clean removes from obj what the cluster sets or regenerates and maps its
// namespaces; see the package documentation. Owner references stay: they
// are rewritten when the object is written.
func clean(ref archive.ItemRef, obj map[string]any, mapNS func(string) string) {
	delete(obj, "status")
	meta := mapOf(obj, "metadata")
	if meta == nil {
		return
	}
	for _, f := range droppedMetadata {
		delete(meta, f)
	}
	deleteKeys(meta, "annotations", droppedAnnotations...)
	if ref.Namespace != "" {
		meta["namespace"] = mapNS(ref.Namespace)
	}
	mapLastApplied(ref, meta, mapNS)

	switch ref.Group + "/" + ref.Resource {
	case "/namespaces":
		meta["name"] = mapNS(ref.Name)
		deleteKeys(meta, "labels", "kubernetes.io/metadata.name")
	case "/services":
		spec := mapOf(obj, "spec")
		if spec == nil {
			break
		}
		if spec["clusterIP"] != "None" {
			delete(spec, "clusterIP")
		}
		if ips := list(obj, "spec", "clusterIPs"); !(len(ips) == 1 && ips[0] == "None") {
			delete(spec, "clusterIPs")
		}
		delete(spec, "healthCheckNodePort")
	case "/persistentvolumes":
		if claimRef := mapOf(mapOf(obj, "spec"), "claimRef"); claimRef != nil {
			if ns, ok := claimRef["namespace"].(string); ok {
				claimRef["namespace"] = mapNS(ns)
			}
			delete(claimRef, "uid")
			delete(claimRef, "resourceVersion")
		}
	case "/pods":
		if spec := mapOf(obj, "spec"); spec != nil {
			delete(spec, "nodeName")
			delete(spec, "ephemeralContainers")
		}
	case "batch/jobs":
		spec := mapOf(obj, "spec")
		if spec == nil || spec["manualSelector"] == true {
			break
		}
		delete(spec, "selector")
		deleteKeys(mapOf(mapOf(spec, "template"), "metadata"), "labels", jobUIDLabels...)
	case "rbac.authorization.k8s.io/rolebindings", "rbac.authorization.k8s.io/clusterrolebindings":
		for _, s := range list(obj, "subjects") {
			if subj, ok := s.(map[string]any); ok && subj["kind"] == "ServiceAccount" {
				if ns, ok := subj["namespace"].(string); ok && ns != "" {
					subj["namespace"] = mapNS(ns)
				}
			}
		}
	}
}

// Helpers over decoded JSON.

// mapOf returns m[key] if it is an object.
func mapOf(m map[string]any, key string) map[string]any {
	if m == nil {
		return nil
	}
	v, _ := m[key].(map[string]any)
	return v
}

// at follows path through nested objects.
func at(obj map[string]any, path ...string) any {
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(obj map[string]any, path ...string) string {
	s, _ := at(obj, path...).(string)
	return s
}

func list(obj map[string]any, path ...string) []any {
	l, _ := at(obj, path...).([]any)
	return l
}

// stringMap returns the string values of the object at path (labels, annotations).
func stringMap(obj map[string]any, path ...string) map[string]string {
	m, _ := at(obj, path...).(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// deleteKeys deletes keys from the object m[field], and the field once it is empty.
func deleteKeys(m map[string]any, field string, keys ...string) {
	sub := mapOf(m, field)
	if sub == nil {
		return
	}
	for _, k := range keys {
		delete(sub, k)
	}
	if len(sub) == 0 {
		delete(m, field)
	}
}
