package dispatch

import (
	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// DeletionFields are the feedback fields of a BackupDeletion: its phase, how
// many blobs it deleted, and its Ready condition's reason and message.
var DeletionFields = []Field{
	{Name: "phase", Path: ".status.phase"},
	{Name: "blobsDeleted", Path: ".status.blobsDeleted"},
	{Name: "observedGeneration", Path: ".status.observedGeneration"},
	{Name: "readyReason", Path: `.status.conditions[?(@.type=="Ready")].reason`},
	{Name: "readyMessage", Path: `.status.conditions[?(@.type=="Ready")].message`},
}

// Deletion is what a BackupDeletion fed back through DeletionFields.
type Deletion struct {
	Phase           backupv1alpha1.TaskPhase
	BlobsDeleted    int64
	Reason, Message string
}

// Finished is true once the spoke has ended the deletion, either way.
func (d Deletion) Finished() bool {
	return d.Phase == backupv1alpha1.TaskCompleted || d.Phase == backupv1alpha1.TaskFailed
}

// ReadDeletion reads a deletion from feedback that Feedback accepted. ok is
// false when no phase was fed back or the spoke's status does not yet
// describe the spoke object that was read.
func ReadDeletion(st Status) (Deletion, bool) {
	v := st.Values
	phase := v["phase"].String
	if og, ok := v["observedGeneration"]; phase == "" || !ok || og.Int != st.ObjectGeneration {
		return Deletion{}, false
	}
	return Deletion{
		Phase:        backupv1alpha1.TaskPhase(phase),
		BlobsDeleted: v["blobsDeleted"].Int,
		Reason:       v["readyReason"].String,
		Message:      v["readyMessage"].String,
	}, true
}
