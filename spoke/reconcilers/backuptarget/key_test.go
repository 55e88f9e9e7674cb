package backuptarget_test

import (
	"context"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A target that names an encryption key is Invalid, saying why, until the
// cluster holds that key: a Secret in lifeboat-system, labelled as an
// encryption key, holding one age identity. Then it goes on to the storage
// check (which fails here for its own reason: the endpoint is not allowed).
func TestTargetNeedsItsEncryptionKey(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokens, err := kubernetes.NewForConfig(cp.Config)
	g.Expect(err).NotTo(HaveOccurred())
	startReconciler(t, &targets.Factory{Tokens: tokens, Secrets: cp.Client})

	tgt := target("encrypted")
	tgt.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: "backup-key", Key: "key.txt"}}
	g.Expect(cp.Client.Create(ctx, tgt)).To(Succeed())
	// revalidate changes the spec, so that the target is validated at once.
	interval := time.Hour
	revalidate := func() {
		interval += time.Minute
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(tgt), tgt)).To(Succeed())
		tgt.Spec.ValidationInterval = &metav1.Duration{Duration: interval}
		g.Expect(cp.Client.Update(ctx, tgt)).To(Succeed())
	}
	status := func() backupv1alpha1.BackupTargetStatus {
		g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(tgt), tgt)).To(Succeed())
		if tgt.Status.ObservedGeneration != tgt.Generation {
			return backupv1alpha1.BackupTargetStatus{}
		}
		return tgt.Status
	}
	invalid := func(reason, message string) {
		t.Helper()
		g.Eventually(status, 30*time.Second, 100*time.Millisecond).Should(And(
			HaveField("Phase", backupv1alpha1.TargetInvalid),
			HaveField("Reason", reason),
			HaveField("Message", ContainSubstring(message)),
		))
	}

	invalid(backupv1alpha1.ReasonEncryptionKeyMissing, `the encryption key Secret lifeboat-system/backup-key of BackupTarget "encrypted" does not exist on this cluster`)

	key, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "lifeboat-system", Name: "backup-key"},
		Data:       map[string][]byte{"key.txt": []byte(key.String())},
	}
	g.Expect(cp.Client.Create(ctx, secret)).To(Succeed())
	revalidate()
	invalid(backupv1alpha1.ReasonEncryptionKeyInvalid, "does not carry the label backup.lifeboat.dev/encryption-key=true")

	secret.Labels = map[string]string{backupv1alpha1.LabelEncryptionKey: "true"}
	secret.Data = map[string][]byte{"other.txt": []byte(key.String())}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	revalidate()
	invalid(backupv1alpha1.ReasonEncryptionKeyMissing, `has no key "key.txt"`)

	secret.Data = map[string][]byte{"key.txt": []byte(key.Recipient().String())}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	revalidate()
	invalid(backupv1alpha1.ReasonEncryptionKeyInvalid, "not an age identity")
	g.Expect(tgt.Status.Message).NotTo(ContainSubstring(key.Recipient().String()), "the status never quotes the Secret")

	secret.Data = map[string][]byte{"key.txt": []byte("# created: 2026-12-07T05:00:00Z\n# public key: " + key.Recipient().String() + "\n" + key.String() + "\n")}
	g.Expect(cp.Client.Update(ctx, secret)).To(Succeed())
	revalidate()
	invalid(backupv1alpha1.ReasonEndpointNotAllowed, "")
}
