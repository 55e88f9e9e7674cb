package backupsync

import (
	"fmt"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// backupIDPattern is a backup's folder name: it can never be "." or "..", hold
// a '/' or climb out of <prefix>/lifeboat/v1/backups/<cluster>/.
var backupIDPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// clockSkew is how far in the future an entry's times may be.
const clockSkew = 10 * time.Minute

// ValidateEntry is why the hub must not import catalog entry e, or "". A
// spoke is trusted only with its own cluster namespace, so everything an
// entry says is checked again here, whatever the CRD already checked: the
// entry's folder, <prefix>/lifeboat/v1/backups/<sourceCluster>/<id>, must
// stay under the location's prefix; names must be names; it must describe a
// complete backup; counts and times must be possible.
func ValidateEntry(e fleetv1alpha1.BackupSummary) string {
	id, cluster := string(e.ID), string(e.SourceCluster)
	switch {
	case len(id) > 128 || !backupIDPattern.MatchString(id) || id == "." || id == "..":
		return fmt.Sprintf("id %q is not a backup ID: its folder would not be under the location's prefix", id)
	case len(validation.IsDNS1123Label(cluster)) > 0:
		return fmt.Sprintf("sourceCluster %q is not a cluster name", cluster)
	case e.Hub != nil && e.SelfServiceNamespace != "":
		return "names both a hub Backup and a self-service namespace"
	case e.Hub == nil && e.SelfServiceNamespace == "":
		return "names neither a hub Backup nor a self-service namespace"
	case e.Hub != nil && (len(validation.IsDNS1123Label(string(e.Hub.Namespace))) > 0 || len(validation.IsDNS1123Subdomain(string(e.Hub.Name))) > 0 || len(e.Hub.UID) > 36):
		return fmt.Sprintf("hub reference %s/%s is not a namespace and name", e.Hub.Namespace, e.Hub.Name)
	case e.SelfServiceNamespace != "" && len(validation.IsDNS1123Label(string(e.SelfServiceNamespace))) > 0:
		return fmt.Sprintf("selfServiceNamespace %q is not a namespace name", e.SelfServiceNamespace)
	case e.Phase != backupv1alpha1.ApplicationBackupSuccess && e.Phase != backupv1alpha1.ApplicationBackupPartialSuccess:
		return fmt.Sprintf("phase %q: only complete backups (Success or PartialSuccess) are listed", e.Phase)
	case e.Items < 0 || e.Warnings < 0 || e.Errors < 0 || e.SizeBytes < 0:
		return "counts must not be negative"
	case e.CompletionTime == nil:
		return "has no completionTime"
	case e.CompletionTime.After(time.Now().Add(clockSkew)):
		return fmt.Sprintf("completionTime %s is in the future", e.CompletionTime.UTC().Format(time.RFC3339))
	case e.StartTime != nil && e.StartTime.After(e.CompletionTime.Time):
		return "startTime is after completionTime"
	}
	return ""
}
