package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of the spoke API.
var GroupVersion = schema.GroupVersion{Group: "backup.lifeboat.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that add the spoke kinds to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the spoke kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&BackupTarget{}, &BackupTargetList{},
		&ApplicationBackup{}, &ApplicationBackupList{},
		&ApplicationRestore{}, &ApplicationRestoreList{},
		&BackupSync{}, &BackupSyncList{},
		&RunLog{}, &RunLogList{},
		&BackupDeletion{}, &BackupDeletionList{},
		&PreBackupPod{}, &PreBackupPodList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
