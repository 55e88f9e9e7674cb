package commands

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// A pod's backup command annotations are read with their defaults, and
// every hostile or broken value is refused with the annotation named.
func TestBackupAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		owner       string
		want        Command
		err         string
	}{
		{name: "defaults from the owner", owner: "Deployment/db",
			annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "pg_dump shop | gzip"},
			want:        Command{Container: "app", Command: []string{"sh", "-c", "pg_dump shop | gzip"}, File: "db.out"}},
		{name: "a bare pod's file is named after it",
			annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x"},
			want:        Command{Container: "app", Command: []string{"sh", "-c", "x"}, File: "db-0.out"}},
		{name: "file and container set",
			annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupFileAnnotation: "shop.sql", backupv1alpha1.BackupContainerAnnotation: "sidecar"},
			want:        Command{Container: "sidecar", Command: []string{"sh", "-c", "x"}, File: "shop.sql"}},
		{name: "a path as file", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupFileAnnotation: "a/b"},
			err: "annotation backup.lifeboat.dev/backup-file: must be a plain file name, without / or \\"},
		{name: "dot-dot as file", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupFileAnnotation: ".."},
			err: `annotation backup.lifeboat.dev/backup-file: must not be ".."`},
		{name: "a long file", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupFileAnnotation: strings.Repeat("f", 129)},
			err: "annotation backup.lifeboat.dev/backup-file: must be at most 128 characters"},
		{name: "a control character in the file", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupFileAnnotation: "a\nb"},
			err: "annotation backup.lifeboat.dev/backup-file: must be valid UTF-8 without control characters"},
		{name: "a container the pod does not have", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "x", backupv1alpha1.BackupContainerAnnotation: "other"},
			err: `annotation backup.lifeboat.dev/backup-container: the pod has no container "other"`},
		{name: "an empty command", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: "  "},
			err: "annotation backup.lifeboat.dev/backup-command: is empty"},
		{name: "a long command", annotations: map[string]string{backupv1alpha1.BackupCommandAnnotation: strings.Repeat("x", 4097)},
			err: "annotation backup.lifeboat.dev/backup-command: is longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Annotations: tc.annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "sidecar"}}}}
			got, err := BackupAnnotations(pod, tc.owner)
			if tc.err != "" {
				g.Expect(err).To(MatchError(tc.err))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}
