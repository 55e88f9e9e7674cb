package applicationbackup_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationbackup"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// claim creates a PersistentVolumeClaim in the application's namespace; a
// bound one gets the status the PV controller gives it (the test's control
// plane runs no controller-manager).
func (e *env) claim(name string, bound bool) {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("standard"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if bound {
		pvc.Spec.VolumeName = "pv-" + e.app + "-" + name
	}
	e.g.Expect(cp.Client.Create(e.ctx, pvc)).To(Succeed())
	if bound {
		pvc.Status.Phase = corev1.ClaimBound
		e.g.Expect(cp.Client.Status().Update(e.ctx, pvc)).To(Succeed())
	}
}

// volumeWarnings are the backup's warnings about volume data.
func (e *env) volumeWarnings(id string) []string {
	dir, err := archive.Path("", cluster, id)
	e.g.Expect(err).NotTo(HaveOccurred())
	r, err := archive.Open(e.ctx, e.store, dir)
	e.g.Expect(err).NotTo(HaveOccurred())
	log, err := r.Log(e.ctx)
	e.g.Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, l := range log {
		if l.Level == archive.LevelWarning && strings.HasPrefix(l.Message, "Volume data not backed up") {
			out = append(out, l.Message)
		}
	}
	return out
}

// moverStandIn backs up nothing itself: it records what it was given and
// skips the claims it is told to.
type moverStandIn struct {
	got      []applicationbackup.Claim
	skip     map[string]string // claim name -> reason
	commands []applicationbackup.CommandSource
}

func (m *moverStandIn) BackUpCommands(_ context.Context, _ applicationbackup.VolumeBackup, sources []applicationbackup.CommandSource) ([]applicationbackup.SkippedCommand, error) {
	m.commands = sources
	return nil, nil
}

func (m *moverStandIn) BackUpVolumes(_ context.Context, b applicationbackup.VolumeBackup) ([]applicationbackup.SkippedClaim, error) {
	m.got = b.Claims
	var out []applicationbackup.SkippedClaim
	for _, c := range b.Claims {
		if why, ok := m.skip[c.Name]; ok {
			out = append(out, applicationbackup.SkippedClaim{Claim: c, Reason: why})
		}
	}
	return out, nil
}

// A backup of bound claims whose data it does not take ends PartialSuccess,
// naming each claim in the status and in a warning of its log; a claim that
// is not bound holds no data and changes nothing.
func TestClaimsWithoutTheirDataMakeABackupPartial(t *testing.T) {
	for _, tc := range []struct {
		name    string
		volumes backupv1alpha1.VolumePolicy
		mover   *moverStandIn
		want    backupv1alpha1.ApplicationBackupPhase
		message string
		named   []string // claims the log warns about
	}{
		{name: "Skip", volumes: backupv1alpha1.VolumesSkip, mover: &moverStandIn{},
			want:    backupv1alpha1.ApplicationBackupPartialSuccess,
			message: "volume data of 2 PersistentVolumeClaims not backed up (volumes: Skip): %[1]s/data, %[1]s/logs",
			named:   []string{"data", "logs"}},
		{name: "Data without a mover", volumes: backupv1alpha1.VolumesData,
			want:    backupv1alpha1.ApplicationBackupPartialSuccess,
			message: "volume data of 2 PersistentVolumeClaims not backed up (this spoke has no volume data mover): %[1]s/data, %[1]s/logs",
			named:   []string{"data", "logs"}},
		{name: "unset is Data", volumes: "",
			want:    backupv1alpha1.ApplicationBackupPartialSuccess,
			message: "(this spoke has no volume data mover): %[1]s/data, %[1]s/logs",
			named:   []string{"data", "logs"}},
		{name: "Data, a mover skips one", volumes: backupv1alpha1.VolumesData, mover: &moverStandIn{skip: map[string]string{"logs": "the volume is not mounted by any pod"}},
			want:    backupv1alpha1.ApplicationBackupPartialSuccess,
			message: "volume data of 1 PersistentVolumeClaim not backed up (the volume is not mounted by any pod): %[1]s/logs",
			named:   []string{"logs"}},
		{name: "Data, a mover takes all", volumes: backupv1alpha1.VolumesData, mover: &moverStandIn{},
			want: backupv1alpha1.ApplicationBackupSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.mover != nil {
				e.r.VolumeData = tc.mover
			}
			e.start()
			e.claim("data", true)
			e.claim("logs", true)
			e.claim("pending", false)
			ab := e.backup(targets.SystemNamespace, "vol-"+rand.String(4), func(ab *backupv1alpha1.ApplicationBackup) {
				ab.Spec.Volumes = tc.volumes
			})
			e.g.Eventually(e.phase(ab)).Should(BeElementOf(backupv1alpha1.ApplicationBackupSuccess, backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ApplicationBackupFailed))
			got := e.get(ab)()
			c := condition(got, backupv1alpha1.ConditionCompleted)
			e.g.Expect(got.Status.Phase).To(Equal(tc.want), c.Message)
			e.g.Expect(got.Status.Stage).To(Equal(backupv1alpha1.StageFinal))

			// The claims are in the backup as objects, whatever became of their data.
			_, items := e.itemsOf(string(got.Status.BackupID))
			e.g.Expect(items).To(ContainElements("persistentvolumeclaims/"+e.app+"/data", "persistentvolumeclaims/"+e.app+"/logs", "persistentvolumeclaims/"+e.app+"/pending"))

			warnings := e.volumeWarnings(string(got.Status.BackupID))
			if tc.want == backupv1alpha1.ApplicationBackupSuccess {
				e.g.Expect(c.Message).NotTo(ContainSubstring("volume data"))
				e.g.Expect(warnings).To(BeEmpty())
			} else {
				e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonPartiallySucceeded))
				e.g.Expect(c.Message).To(ContainSubstring(tc.message, e.app))
				e.g.Expect(warnings).To(HaveLen(len(tc.named)))
				for i, name := range tc.named {
					e.g.Expect(warnings[i]).To(ContainSubstring("PersistentVolumeClaim %s/%s", e.app, name))
				}
			}
			if tc.mover != nil && tc.volumes != backupv1alpha1.VolumesSkip {
				// The mover is handed the bound claims, with their volumes.
				e.g.Expect(tc.mover.got).To(Equal([]applicationbackup.Claim{
					{Namespace: e.app, Name: "data", Volume: "pv-" + e.app + "-data"},
					{Namespace: e.app, Name: "logs", Volume: "pv-" + e.app + "-logs"},
				}))
			}
			if tc.volumes == backupv1alpha1.VolumesSkip {
				e.g.Expect(tc.mover.got).To(BeNil(), "volumes: Skip never calls the mover")
			}
		})
	}
}
