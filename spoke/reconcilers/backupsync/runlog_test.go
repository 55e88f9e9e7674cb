package backupsync

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
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

// The log of an encrypted backup is decrypted on the cluster with its
// target's key; without the key, or with another, the page says why and
// holds nothing of the log.
func TestRunLogOfAnEncryptedBackup(t *testing.T) {
	e := newEnv(t)
	key, err := age.GenerateX25519Identity()
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-system"}}))).To(Succeed())
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "lifeboat-system", Name: "key-" + e.target, Labels: map[string]string{backupv1alpha1.LabelEncryptionKey: "true"}},
		Data:       map[string][]byte{"key.txt": []byte(key.String())},
	}
	e.g.Expect(cp.Client.Create(e.ctx, secret)).To(Succeed())
	e.r.Targets = &targets.Factory{Secrets: cp.Client}

	dir, _ := archive.Path("", "spoke-1", "sealed")
	w, err := archive.NewWriter(e.ctx, e.store, dir, archive.Meta{Owner: hubOwner, Recipient: key.Recipient()})
	e.g.Expect(err).NotTo(HaveOccurred())
	w.Log(archive.LevelWarning, nil, "the sealed line")
	_, err = w.Close(e.ctx)
	e.g.Expect(err).NotTo(HaveOccurred())

	// The target has no encryption: the log cannot be read here.
	rl, page := e.runLog("sealed", backupv1alpha1.RunBackup, "", 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(meta.FindStatusCondition(rl.Status.Conditions, backupv1alpha1.ConditionReady)).To(HaveField("Reason", backupv1alpha1.ReasonEncryptionKeyMissing))
	e.g.Expect(page.Spec.Log.Text).To(BeEmpty())

	target := &backupv1alpha1.BackupTarget{}
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKey{Name: e.target}, target)).To(Succeed())
	target.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: secret.Name, Key: "key.txt"}}
	e.g.Expect(cp.Client.Update(e.ctx, target)).To(Succeed())
	rl, page = e.runLog("sealed", backupv1alpha1.RunBackup, "", 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(page.Spec.Log.Text).To(ContainSubstring("the sealed line"))

	other, err := age.GenerateX25519Identity()
	e.g.Expect(err).NotTo(HaveOccurred())
	secret.Data["key.txt"] = []byte(other.String())
	e.g.Expect(cp.Client.Update(e.ctx, secret)).To(Succeed())
	rl, page = e.runLog("sealed", backupv1alpha1.RunBackup, "", 0)
	e.g.Expect(rl.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(meta.FindStatusCondition(rl.Status.Conditions, backupv1alpha1.ConditionReady)).To(HaveField("Reason", backupv1alpha1.ReasonEncryptionKeyMismatch))
	e.g.Expect(page.Spec.Log.Error).To(ContainSubstring(other.Recipient().String()))
	e.g.Expect(page.Spec.Log.Text).To(BeEmpty())
}
