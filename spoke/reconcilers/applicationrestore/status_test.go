package applicationrestore

import (
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
)

// An error that is not an object (a command output that did not go back)
// makes the restore PartialSuccess without claiming objects failed.
func TestErrorsBesideObjectsArePartialSuccess(t *testing.T) {
	g := NewWithT(t)
	r := &Reconciler{}

	commandOnly := &backupv1alpha1.ApplicationRestore{}
	r.setResult(commandOnly, restore.Result{Total: 3, Restored: 3, Errors: 1}, []string{"output db/dump.sql: no pod with restore-command"})
	g.Expect(commandOnly.Status.Phase).To(Equal(backupv1alpha1.RestorePartialSuccess))
	g.Expect(message(commandOnly)).To(And(HavePrefix("1 errors, each named in the restore's log"),
		ContainSubstring("Restored 3 of 3 objects"), ContainSubstring("no pod with restore-command"),
		Not(ContainSubstring("could not be restored"))))

	objects := &backupv1alpha1.ApplicationRestore{}
	r.setResult(objects, restore.Result{Total: 3, Restored: 2, Failed: 1, Errors: 1}, nil)
	g.Expect(objects.Status.Phase).To(Equal(backupv1alpha1.RestorePartialSuccess))
	g.Expect(message(objects)).To(HavePrefix("1 objects could not be restored (1 errors)"))
}
