package backuplocation

import (
	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// TargetName is the name of the BackupTarget that BackupLocation
// namespace/name becomes on a spoke, and what spoke objects sent for the
// location refer to: "<namespace>-<name>-<hash>", DNS-1123, at most 63
// characters. The hash of namespace and name is always there: BackupTargets
// are cluster-scoped, and without it team-a/x and team/a-x would share one
// target, so one tenant could overwrite another's.
func TargetName(namespace, name string) string {
	return dispatch.SpokeName(namespace, name)
}

// FederatedSubject is the subject that BackupLocation namespace/name's
// BackupTarget signs in to Entra ID as on every cluster: each identity of the
// location needs a federated credential for it and each cluster's issuer.
func FederatedSubject(namespace, name string) string {
	return backupv1alpha1.TargetSubject(TargetName(namespace, name))
}
