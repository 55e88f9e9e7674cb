package targets

import (
	"context"
	"errors"
	"fmt"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Key returns the age identity that target t encrypts and decrypts backups
// with, read from its Secret in lifeboat-system, or nil when t has no
// spec.encryption. A Secret or key that is missing, not labelled as an
// encryption key, or not one age X25519 identity gives a *Refusal
// (EncryptionKeyMissing, EncryptionKeyInvalid) that says what to fix; other
// errors are for retry. The key is read from the API server each time, never
// cached by the spoke.
func (f *Factory) Key(ctx context.Context, t *backupv1alpha1.BackupTarget) (*age.X25519Identity, error) {
	enc := t.Spec.Encryption
	if enc == nil {
		return nil, nil
	}
	if f == nil || f.Secrets == nil {
		return nil, errors.New("targets: the Factory has no Secrets reader")
	}
	ref, ns := enc.KeySecretRef, backupv1alpha1.EncryptionKeyNamespace
	where := fmt.Sprintf("the encryption key Secret %s/%s of BackupTarget %q", ns, ref.Name, t.Name)
	s := &corev1.Secret{}
	if err := f.Secrets.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &Refusal{backupv1alpha1.ReasonEncryptionKeyMissing, where + " does not exist on this cluster: deliver the key to every cluster that uses the target (see docs/encryption.md)"}
		}
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	if s.Labels[backupv1alpha1.LabelEncryptionKey] != "true" {
		return nil, &Refusal{backupv1alpha1.ReasonEncryptionKeyInvalid, fmt.Sprintf(
			"%s does not carry the label %s=true, which marks the Secrets the spoke may read as encryption keys", where, backupv1alpha1.LabelEncryptionKey)}
	}
	b, ok := s.Data[ref.Key]
	if !ok {
		return nil, &Refusal{backupv1alpha1.ReasonEncryptionKeyMissing, fmt.Sprintf("%s has no key %q", where, ref.Key)}
	}
	id, err := archive.ParseKey(b)
	if err != nil {
		return nil, &Refusal{backupv1alpha1.ReasonEncryptionKeyInvalid, fmt.Sprintf("%s, key %q, %v", where, ref.Key, err)}
	}
	return id, nil
}

// Recipient is the public half of Key: what backups through t are encrypted
// to, nil when t has no spec.encryption.
func (f *Factory) Recipient(ctx context.Context, t *backupv1alpha1.BackupTarget) (*age.X25519Recipient, error) {
	id, err := f.Key(ctx, t)
	if id == nil || err != nil {
		return nil, err
	}
	return id.Recipient(), nil
}
