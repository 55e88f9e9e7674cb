package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of the hub API.
var GroupVersion = schema.GroupVersion{Group: "fleet.lifeboat.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that add the hub kinds to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the hub kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&ClusterDiscovery{}, &ClusterDiscoveryList{},
		&BackupCluster{}, &BackupClusterList{},
		&BackupLocation{}, &BackupLocationList{},
		&Backup{}, &BackupList{},
		&Restore{}, &RestoreList{},
		&SchedulePolicy{}, &SchedulePolicyList{},
		&BackupSchedule{}, &BackupScheduleList{},
		&ExecRule{}, &ExecRuleList{},
		&BackupSync{}, &BackupSyncList{},
		&RunLog{}, &RunLogList{},
		&BackupCatalog{}, &BackupCatalogList{},
		&BackupTenant{}, &BackupTenantList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
