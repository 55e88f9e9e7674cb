package restore

import "github.com/lifeboat-dev/lifeboat/spoke/archive"

// Priority classes, written in this order: what others refer to first,
// workloads last, so that a Pod starts with its ServiceAccount, Secrets,
// ConfigMaps and claims in place.
const (
	classCRDs = iota
	classNamespaces
	classStorageClasses
	classVolumes
	classClaims
	classServiceAccounts
	classRoles
	classRoleBindings
	classSecrets
	classConfigMaps
	classLimits
	classOther
	classWorkloads
	numClasses
)

var classes = map[string]int{
	"apiextensions.k8s.io/customresourcedefinitions": classCRDs,
	"/namespaces":                                   classNamespaces,
	"storage.k8s.io/storageclasses":                 classStorageClasses,
	"/persistentvolumes":                            classVolumes,
	"/persistentvolumeclaims":                       classClaims,
	"/serviceaccounts":                              classServiceAccounts,
	"rbac.authorization.k8s.io/clusterroles":        classRoles,
	"rbac.authorization.k8s.io/roles":               classRoles,
	"rbac.authorization.k8s.io/clusterrolebindings": classRoleBindings,
	"rbac.authorization.k8s.io/rolebindings":        classRoleBindings,
	"/secrets":                                      classSecrets,
	"/configmaps":                                   classConfigMaps,
	"/limitranges":                                  classLimits,
	"/resourcequotas":                               classLimits,
	"apps/deployments":                              classWorkloads,
	"apps/statefulsets":                             classWorkloads,
	"apps/daemonsets":                               classWorkloads,
	"apps/replicasets":                              classWorkloads,
	"/replicationcontrollers":                       classWorkloads,
	"batch/jobs":                                    classWorkloads,
	"batch/cronjobs":                                classWorkloads,
	"/pods":                                         classWorkloads,
}

func classOf(ref archive.ItemRef) int {
	if c, ok := classes[ref.Group+"/"+ref.Resource]; ok {
		return c
	}
	return classOther
}
