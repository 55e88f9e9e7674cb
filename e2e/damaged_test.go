package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A truncated, tampered or version-bumped backup fails its restore with a
// clear message and changes nothing in the cluster.
func TestDamagedBackupChangesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	id := validTarget(g, ctx, "damage-backups", "damage-backups")
	ns := "damage-src"
	deploySample(g, ctx, spoke.Client, ns)
	b := appBackup("damage", "damage-backups", ns)
	b.Spec.Volumes = backupv1alpha1.VolumesSkip
	g.Expect(spoke.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, b, backupPhase, 2*time.Minute)).To(Equal("PartialSuccess"), "volumes: Skip: the claim's data is not backed up")

	store := blobStore(g, id, spoke, "damage-backups", "damage-backups")
	dir, err := archive.Path("", spoke.Name, string(b.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	read := func(name string) []byte {
		rc, err := store.Get(ctx, dir+"/"+name)
		g.Expect(err).NotTo(HaveOccurred())
		defer rc.Close()
		data, err := io.ReadAll(rc)
		g.Expect(err).NotTo(HaveOccurred())
		return data
	}
	write := func(name string, data []byte) {
		_, err := store.Put(ctx, dir+"/"+name, bytes.NewReader(data))
		g.Expect(err).NotTo(HaveOccurred())
	}
	resources, manifest := read(archive.ResourcesFile), read(archive.ManifestFile)
	flipped := bytes.Clone(resources)
	flipped[len(flipped)/2] ^= 0x20

	cases := []struct {
		name, file      string
		data            []byte
		reason, message string
	}{
		{"truncated", archive.ResourcesFile, resources[:len(resources)/2], backupv1alpha1.ReasonBackupCorrupt, archive.ResourcesFile},
		{"tampered", archive.ResourcesFile, flipped, backupv1alpha1.ReasonBackupCorrupt, archive.ResourcesFile},
		{"version-bumped", archive.ManifestFile, regexp.MustCompile(`"formatVersion":\s*1`).ReplaceAll(manifest, fmt.Appendf(nil, `"formatVersion": %d`, archive.FormatVersion+1)), backupv1alpha1.ReasonBackupFormatUnsupported, "newer Lifeboat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tc.data).NotTo(Equal(read(tc.file)), "the damage is real")
			write(tc.file, tc.data)
			defer write(archive.ResourcesFile, resources)
			defer write(archive.ManifestFile, manifest)

			target := "damaged-" + tc.name
			r := appRestore("damaged-"+tc.name, "damage-backups", spoke.Name, string(b.Status.BackupID), map[string]string{ns: target})
			g.Expect(spoke.Client.Create(ctx, r)).To(Succeed())
			g.Expect(waitFinished(g, ctx, spoke.Client, r, restorePhase, 2*time.Minute)).To(Equal("Failed"))
			g.Expect(r.Status.Conditions).To(ContainElement(And(HaveField("Reason", tc.reason), HaveField("Message", ContainSubstring(tc.message)))))
			t.Logf("%s: %+v", tc.name, r.Status.Conditions)
			err := spoke.Client.Get(ctx, client.ObjectKey{Name: target}, &corev1.Namespace{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing was restored from a damaged backup")
		})
	}
}
