package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
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

// With encryption on, nothing of a backed-up Secret, ConfigMap or volume's
// files reaches the storage in plaintext: not the data, not the names; the
// volume repository's password is derived from the key. Another cluster that
// holds the same key restores the backup, the volume's files byte-identical;
// one that holds another key, or none, is refused with a reason that says so
// and writes nothing: no namespace, no claim, no mover pod.
func TestEncryptedBackupNeedsTheKey(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
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
	// And a claim with a file whose name and content are the marker, written
	// by a pod that is gone before the backup.
	boundClaim(g, ctx, spoke1.Client, ns, "data", fleet.StorageClass)
	writer := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "writer"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "writer", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
				Command:         []string{"/busybox", "sh", "-c", `echo "$0" > "/data/$0"`, marker},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}, // the host-path volume is root's
				VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}
	g.Expect(spoke1.Client.Create(ctx, writer)).To(Succeed())
	g.Eventually(func() corev1.PodPhase {
		g.Expect(spoke1.Client.Get(ctx, client.ObjectKeyFromObject(writer), writer)).To(Succeed())
		return writer.Status.Phase
	}, 3*time.Minute, 500*time.Millisecond).Should(Equal(corev1.PodSucceeded))
	g.Expect(spoke1.Client.Delete(ctx, writer)).To(Succeed())
	source := volumeSums(g, ctx, spoke1, ns, "data")
	g.Expect(source).To(HaveKey(marker))

	b := appBackup("sealed", target, ns)
	g.Expect(spoke1.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke1.Client, b, backupPhase, 4*time.Minute)).To(Equal("Success"), "conditions: %+v", b.Status.Conditions)
	g.Expect(b.Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("with the data of 1 PersistentVolumeClaims"))))

	// Every blob of the container, read as the target's identity: no marker,
	// in plaintext or base64 (as a Secret's data is in JSON).
	store := teamStore(g, id, spoke1, backupv1alpha1.TargetServiceAccount(target), container, "")
	needles := [][]byte{[]byte(marker), []byte(base64.StdEncoding.EncodeToString([]byte(marker)))}
	repository := "e2e/lifeboat/v1/repositories/" + spoke1.Name + "/" + ns + "/"
	var blobs, repositoryBlobs int
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
			if strings.HasPrefix(name, repository) {
				repositoryBlobs++
			}
		}
		return nil
	})).To(Succeed())
	g.Expect(blobs).To(BeNumerically(">=", 4), "the backup's four files were searched")
	g.Expect(repositoryBlobs).To(BeNumerically(">", 0), "the volume repository %s was searched", repository)
	t.Logf("searched %d blobs of container %s (%d of the volume repository): no marker", blobs, container, repositoryBlobs)

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

	// The volume repository's password is the one derived from the key: the
	// password of a target without a key does not open it, the key's does.
	g.Expect(rd.Manifest().Volumes).To(ConsistOf(HaveField("Repository", strings.TrimPrefix(repository, "e2e/"))))
	tgt := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: target}, tgt)).To(Succeed())
	volumeStore := blobStore(g, id, spoke1, target, container)
	_, err = volumes.Open(ctx, volumeStore, spoke1.Name, ns, volumes.Password(tgt, nil, spoke1.Name, ns))
	g.Expect(err).To(MatchError(volumes.ErrWrongPassword))
	rep, err := volumes.Open(ctx, volumeStore, spoke1.Name, ns, volumes.Password(tgt, key, spoke1.Name, ns))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = rep.Restore(ctx, rd.Manifest().Volumes[0].Snapshot, discard{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Close(ctx)).To(Succeed())

	restoreOn2 := func(name, through, into string) *backupv1alpha1.ApplicationRestore {
		r := appRestore(name, through, spoke1.Name, string(b.Status.BackupID), map[string]string{ns: into})
		g.Expect(spoke2.Client.Create(ctx, r)).To(Succeed())
		waitFinished(g, ctx, spoke2.Client, r, restorePhase, 4*time.Minute)
		return r
	}
	nothingWritten := func(into string) {
		err := spoke2.Client.Get(ctx, client.ObjectKey{Name: into}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing was restored into %s", into)
		claims := &corev1.PersistentVolumeClaimList{}
		g.Expect(spoke2.Client.List(ctx, claims, client.InNamespace(into))).To(Succeed())
		g.Expect(claims.Items).To(BeEmpty(), "no claim was restored into %s", into)
		movers := &corev1.PodList{}
		g.Expect(spoke2.Client.List(ctx, movers, client.HasLabels{volumes.MoverLabel})).To(Succeed())
		g.Expect(movers.Items).To(BeEmpty(), "no mover pod was started on %s", spoke2.Name)
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
	g.Expect(volumeSums(g, ctx, spoke2, into, "data")).To(Equal(source), "the claim's file byte-identical (sha256)")
	expectNoMovers(g, ctx, spoke2, into)

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
