package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// deliverKey puts key into Secret name in lifeboat-system on c, labelled as
// an encryption key, as a cluster admin's secret-store tooling would.
func deliverKey(g Gomega, ctx context.Context, c client.Client, name string, key *age.X25519Identity) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: targets.SystemNamespace, Name: name,
			Labels: map[string]string{backupv1alpha1.LabelEncryptionKey: "true"}},
		Data: map[string][]byte{"key.txt": []byte(key.String() + "\n")},
	}
	err := c.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, s)
	}
	g.Expect(err).NotTo(HaveOccurred())
}

// With encryption on, nothing of a backed-up Secret or ConfigMap reaches the
// storage in plaintext: not the data, not the names. Another cluster that
// holds the same key restores the backup; one that holds another key, or
// none, is refused with a reason that says so and writes nothing.
func TestEncryptedBackupNeedsTheKey(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spoke1, spoke2 := testFleet.Spokes[0], testFleet.Spokes[1]
	const target, container, keySecret = "sealed-backups", "sealed-backups", "lifeboat-backup-key"

	key, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())
	wrong, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())
	deliverKey(g, ctx, spoke1.Client, keySecret, key)
	deliverKey(g, ctx, spoke2.Client, keySecret, wrong) // fixed below
	id := validTarget(g, ctx, target, container, func(t *backupv1alpha1.BackupTarget) {
		t.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: keySecret, Key: "key.txt"}}
	})

	// The workload: a Secret and a ConfigMap whose data and names hold a marker.
	marker := "sealed-marker-" + rand.String(10)
	ns := "sealed-" + rand.String(4)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	g.Expect(spoke1.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: marker},
		Data: map[string][]byte{"password": []byte(marker)}})).To(Succeed())
	g.Expect(spoke1.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"},
		Data: map[string]string{"token": marker}})).To(Succeed())

	b := appBackup("sealed", target, ns)
	g.Expect(spoke1.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke1.Client, b, backupPhase, 2*time.Minute)).To(Equal("Success"), "conditions: %+v", b.Status.Conditions)

	// Every blob of the container, read as the target's identity: no marker,
	// in plaintext or base64 (as a Secret's data is in JSON).
	store := teamStore(g, id, spoke1, backupv1alpha1.TargetServiceAccount(target), container, "")
	needles := [][]byte{[]byte(marker), []byte(base64.StdEncoding.EncodeToString([]byte(marker)))}
	var blobs int
	g.Expect(store.Walk(ctx, "", func(names []string) error {
		for _, name := range names {
			rc, err := store.Get(ctx, name)
			g.Expect(err).NotTo(HaveOccurred())
			data, err := io.ReadAll(rc)
			rc.Close()
			g.Expect(err).NotTo(HaveOccurred())
			for _, n := range needles {
				g.Expect(bytes.Contains(data, n)).To(BeFalse(), "%s holds the marker %q", name, n)
			}
			blobs++
		}
		return nil
	})).To(Succeed())
	g.Expect(blobs).To(BeNumerically(">=", 4), "the backup's four files were searched")
	t.Logf("searched %d blobs of container %s: no marker", blobs, container)

	// backup.json stays readable without the key and names the key.
	dir, err := archive.Path("e2e", spoke1.Name, string(b.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	rd, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rd.Manifest().Encryption).To(Equal(&archive.Encryption{Recipient: key.Recipient().String()}))
	g.Expect(b.Status.ManifestSHA256).To(Equal(rd.Manifest().SHA256), "the digest the hub keeps is backup.json's")
	// The marker is in the backup: the search above was not vacuous.
	g.Expect(rd.UseKey(key)).To(Succeed())
	var found bool
	g.Expect(rd.Items(ctx, func(it archive.Item) error {
		found = found || bytes.Contains(it.Object, needles[1])
		return nil
	})).To(Succeed())
	g.Expect(found).To(BeTrue(), "the decrypted backup holds the Secret")

	restoreOn2 := func(name, through, into string) *backupv1alpha1.ApplicationRestore {
		r := appRestore(name, through, spoke1.Name, string(b.Status.BackupID), map[string]string{ns: into})
		g.Expect(spoke2.Client.Create(ctx, r)).To(Succeed())
		waitFinished(g, ctx, spoke2.Client, r, restorePhase, 2*time.Minute)
		return r
	}
	nothingWritten := func(into string) {
		err := spoke2.Client.Get(ctx, client.ObjectKey{Name: into}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing was restored into %s", into)
	}

	// spoke-2 holds another key: refused, nothing written.
	r := restoreOn2("sealed-wrong-key", target, ns+"-wrong")
	g.Expect(r.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(r.Status.Conditions).To(ContainElement(And(
		HaveField("Reason", backupv1alpha1.ReasonEncryptionKeyMismatch),
		HaveField("Message", And(ContainSubstring(key.Recipient().String()), ContainSubstring(wrong.Recipient().String()), ContainSubstring("nothing was restored"))))))
	t.Logf("wrong key: %s", r.Status.Conditions[0].Message)
	nothingWritten(ns + "-wrong")

	// A target on spoke-2 over the same container without encryption: refused.
	const plain = "sealed-backups-plain"
	g.Expect(testFleet.Azure.Federate(id, spoke2.ControlPlane, backupv1alpha1.TargetSubject(plain))).To(Succeed())
	g.Expect(spoke2.Client.Create(ctx, backupTarget(plain, container, id))).To(Succeed())
	g.Expect(waitValidated(g, ctx, spoke2.Client, plain).Phase).To(Equal(backupv1alpha1.TargetValid))
	r = restoreOn2("sealed-no-key", plain, ns+"-nokey")
	g.Expect(r.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(r.Status.Conditions).To(ContainElement(And(
		HaveField("Reason", backupv1alpha1.ReasonEncryptionKeyMissing),
		HaveField("Message", ContainSubstring(key.Recipient().String())))))
	nothingWritten(ns + "-nokey")

	// The admin delivers the right key to spoke-2: the same backup restores.
	deliverKey(g, ctx, spoke2.Client, keySecret, key)
	into := ns + "-copy"
	r = restoreOn2("sealed-migrate", target, into)
	g.Expect(r.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), "conditions: %+v", r.Status.Conditions)
	got := &corev1.Secret{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: into, Name: marker}, got)).To(Succeed())
	g.Expect(string(got.Data["password"])).To(Equal(marker))
	cm := &corev1.ConfigMap{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: into, Name: "settings"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("token", marker))

	// The restore's log, kept beside the backup, is encrypted too.
	g.Expect(r.Status.Log).NotTo(BeEmpty())
	rc, err := store.Get(ctx, "e2e/"+r.Status.Log)
	g.Expect(err).NotTo(HaveOccurred())
	logBlob, err := io.ReadAll(rc)
	rc.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(logBlob)).To(HavePrefix("age-encryption.org/v1\n"))
	lines, err := archive.ReadRestoreLog(ctx, store, "e2e/"+r.Status.Log, 1<<20, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lines).NotTo(BeEmpty())
}
