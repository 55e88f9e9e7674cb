package backupsync

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// putLog stores text gzipped at name.
func (e *env) putLog(name, text string) {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	_, _ = gz.Write([]byte(text))
	e.g.Expect(gz.Close()).To(Succeed())
	_, err := e.store.Put(e.ctx, name, &b)
	e.g.Expect(err).NotTo(HaveOccurred())
}

// runLog runs a spoke RunLog for the backup spoke-1/id and returns it and
// the page it wrote.
func (e *env) runLog(id string, kind backupv1alpha1.RunKind, restoreLog string, maxBytes int32) (*backupv1alpha1.RunLog, *fleetv1alpha1.BackupCatalog) {
	rl := &backupv1alpha1.RunLog{
		ObjectMeta: metav1.ObjectMeta{Name: "log-" + rand.String(6)},
		Spec: backupv1alpha1.RunLogSpec{
			Target:     backupv1alpha1.ObjectName(e.target),
			Source:     backupv1alpha1.BackupSource{Cluster: "spoke-1", BackupID: backupv1alpha1.BackupID(id)},
			Kind:       kind,
			RestoreLog: restoreLog,
			MaxBytes:   maxBytes,
			Hub:        backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "look", UID: types.UID("uid-" + rand.String(8))},
		},
	}
	e.g.Expect(cp.Client.Create(e.ctx, rl)).To(Succeed())
	_, err := (&RunLogs{Reconciler: e.r}).Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rl)})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(rl), rl)).To(Succeed())
	page := &fleetv1alpha1.BackupCatalog{}
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKey{Namespace: e.cluster, Name: fleetv1alpha1.LogPageName(rl.Name)}, page)).To(Succeed())
	e.g.Expect(page.Labels).To(HaveKeyWithValue(fleetv1alpha1.LabelRunLogUID, string(rl.Spec.Hub.UID)))
	e.g.Expect(page.Spec.Log.RunLog).To(Equal(rl.Spec.Hub))
	return rl, page
}

// A backup's log and a restore's log are sent to the hub, their end when
// they are longer than asked for.
func TestRunLogSendsTheLogsEnd(t *testing.T) {
	e := newEnv(t)
	e.backup("spoke-1", "b1", hubOwner, true)
	dir, _ := archive.Path("", "spoke-1", "b1")
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"level":"info","message":"backed up item %03d"}`, i))
	}
	whole := strings.Join(lines, "\n") + "\n"
	e.putLog(dir+"/"+archive.LogFile, whole)

	rl, page := e.runLog("b1", backupv1alpha1.RunBackup, "", 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(page.Spec.Log).To(HaveField("Text", whole))
	e.g.Expect(page.Spec.Log.Truncated).To(BeFalse())
	e.g.Expect(page.Spec.Log.SizeBytes).To(BeEquivalentTo(len(whole)))

	_, page = e.runLog("b1", backupv1alpha1.RunBackup, "", 500)
	e.g.Expect(page.Spec.Log.Truncated).To(BeTrue())
	e.g.Expect(len(page.Spec.Log.Text)).To(BeNumerically("<=", 500))
	e.g.Expect(page.Spec.Log.Text).To(HavePrefix(`{"level"`))
	e.g.Expect(page.Spec.Log.Text).To(HaveSuffix(`item 199"}` + "\n"))

	restoreLog := archive.RestoreLogPath(dir, "spoke-2", "lifeboat-system", "team-a-r1-abc", "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01")
	e.putLog(restoreLog, `{"level":"info","message":"created","result":"created","kind":"ConfigMap","name":"a"}`+"\n")
	rl, page = e.runLog("b1", backupv1alpha1.RunRestore, restoreLog, 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(page.Spec.Log.Text).To(ContainSubstring(`"result":"created"`))
}

// A restore log path that is not a restore log of the backup is not read,
// however it tries to leave the backup's restores/ folder; a missing log is
// said to be missing.
func TestRunLogRefusesOtherPaths(t *testing.T) {
	e := newEnv(t)
	e.backup("spoke-1", "b1", hubOwner, true)
	e.backup("spoke-1", "b2", hubOwner, true)
	dir, _ := archive.Path("", "spoke-1", "b1")
	other, _ := archive.Path("", "spoke-1", "b2")
	e.putLog(other+"/restores/c/ns/secret-u.jsonl.gz", "another backup's restore\n")
	for _, path := range []string{
		other + "/restores/c/ns/secret-u.jsonl.gz",
		dir + "/restores/c/ns/../../../../b2/restores/c/ns/secret-u.jsonl.gz",
		dir + "/" + archive.ManifestFile,
	} {
		rl, page := e.runLog("b1", backupv1alpha1.RunRestore, path, 0)
		e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskFailed), path)
		e.g.Expect(page.Spec.Log.Text).To(BeEmpty(), path)
		e.g.Expect(page.Spec.Log.Error).To(ContainSubstring("is not a restore log of the backup"), path)
	}
	rl, page := e.runLog("b1", backupv1alpha1.RunRestore, dir+"/restores/c/ns/gone-u.jsonl.gz", 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(page.Spec.Log.Error).To(ContainSubstring("there is no log at"))
}
