package volumes

import (
	"testing"

	"filippo.io/age"
	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// With the target's encryption key, each repository's password comes from
// the key: the same on every cluster holding it, another for another key or
// another repository, and never the key-less password anyone can compute.
func TestPasswordComesFromTheEncryptionKey(t *testing.T) {
	g := NewWithT(t)
	target := &backupv1alpha1.BackupTarget{}
	target.Spec.Azure = backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups"}
	key, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())
	other, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())

	plain := Password(target, nil, "spoke-1", "shop")
	g.Expect(Password(target, nil, "spoke-1", "shop")).To(Equal(plain), "stable")
	withKey := Password(target, key, "spoke-1", "shop")
	g.Expect(withKey).NotTo(Equal(plain))
	g.Expect(Password(target, key, "spoke-1", "shop")).To(Equal(withKey), "the same key gives the same password on every cluster")
	g.Expect(Password(target, other, "spoke-1", "shop")).NotTo(Equal(withKey))
	g.Expect(Password(target, key, "spoke-1", "web")).NotTo(Equal(withKey), "each repository has its own")
	g.Expect(Password(target, key, "spoke-2", "shop")).NotTo(Equal(withKey))
}
