package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/maintenance"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// boundClaim creates claim name in ns of storageClass on c and returns the
// PersistentVolume its provisioner bound it to.
func boundClaim(g Gomega, ctx context.Context, c client.Client, ns, name, storageClass string) string {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(storageClass),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		},
	}
	g.Expect(c.Create(ctx, pvc)).To(Succeed())
	return waitBound(g, ctx, c, ns, name)
}

// waitBound waits until claim ns/name is Bound and returns its volume.
func waitBound(g Gomega, ctx context.Context, c client.Client, ns, name string) string {
	pvc := &corev1.PersistentVolumeClaim{}
	g.Eventually(func() corev1.PersistentVolumeClaimPhase {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pvc)).To(Succeed())
		return pvc.Status.Phase
	}, 2*time.Minute, 250*time.Millisecond).Should(Equal(corev1.ClaimBound), "claim %s/%s is provisioned", ns, name)
	return pvc.Spec.VolumeName
}

// A hub Backup with volumes: Skip of a namespace with a provisioned claim
// ends PartialSuccess naming the claim. Its Restore onto the other spoke
// never creates the source's PersistentVolume (it points at spoke-1's
// disk): the claim is provisioned anew there, in the StorageClass that
// storageClassMappings names.
func TestVolumesSkipAndRestoreOntoAnotherCluster(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spoke1, spoke2 := onboarded()[0], onboarded()[1]
	const team, container = "team-volumes", "volumes-backups"
	loc, _ := validTeamLocation(g, ctx, team, container, spoke1, spoke2)

	ns := "vol-" + rand.String(4)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	defer func() {
		_ = spoke1.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	sourcePV := boundClaim(g, ctx, spoke1.Client, ns, "data", fleet.StorageClass)
	g.Expect(spoke1.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"k": "v"}})).To(Succeed())

	t.Log("volumes: Skip ends PartialSuccess and names the claim")
	b := hubBackup(team, "skip", spoke1, loc.Name, ns)
	b.Spec.Volumes = backupv1alpha1.VolumesSkip
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, b, hubBackupPhase, 3*time.Minute)).To(BeEquivalentTo(fleetv1alpha1.BackupPartialSuccess), "conditions: %+v", b.Status.Conditions)
	g.Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring(
		fmt.Sprintf("volume data of 1 PersistentVolumeClaim not backed up (volumes: Skip): %s/data", ns)))
	t.Logf("Backup %s: %s", b.Name, readyMessage(b.Status.Conditions))

	t.Log("the restore onto spoke-2 provisions the claim anew in the mapped StorageClass, and never creates spoke-1's volume")
	fast := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast-" + rand.String(4)}, Provisioner: "kubernetes.io/host-path",
		ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete)}
	g.Expect(spoke2.Client.Create(ctx, fast)).To(Succeed())
	defer func() { _ = spoke2.Client.Delete(context.Background(), fast) }()
	defer func() {
		_ = spoke2.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	rs := tenantRestore(team, "to-spoke-2", b.Name, spoke2.Name, backupv1alpha1.RestoreOptions{
		StorageClassMappings: backupv1alpha1.StorageClassMapping{fleet.StorageClass: backupv1alpha1.ObjectName(fast.Name)},
	})
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, rs, func(r *fleetv1alpha1.Restore) string { return string(r.Status.Phase) }, 3*time.Minute)).
		To(BeEquivalentTo(backupv1alpha1.RestoreSuccess), "conditions: %+v", rs.Status.Conditions)
	g.Expect(rs.Status.Warnings).To(BeNumerically(">=", 2), "the volume left out, the claim without it")

	err := spoke2.Client.Get(ctx, client.ObjectKey{Name: sourcePV}, &corev1.PersistentVolume{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "spoke-1's PersistentVolume %s is not on spoke-2 (%v)", sourcePV, err)
	restoredPV := waitBound(g, ctx, spoke2.Client, ns, "data")
	g.Expect(restoredPV).NotTo(Equal(sourcePV))
	claim := &corev1.PersistentVolumeClaim{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, claim)).To(Succeed())
	g.Expect(claim.Spec.StorageClassName).To(Equal(ptr.To(fast.Name)))
	pv := &corev1.PersistentVolume{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Name: restoredPV}, pv)).To(Succeed())
	g.Expect(pv.Spec.StorageClassName).To(Equal(fast.Name), "spoke-2's provisioner made the volume")
	t.Logf("claim %s/data on spoke-2 bound to new volume %s (spoke-1's: %s)", ns, restoredPV, sourcePV)
}

// The files of a Deployment's volume on spoke-1 are backed up through a
// mover pod into the location's kopia repository, and restored on spoke-2
// into a new claim, byte for byte, before the Deployment's pod starts: the
// pod prints the sha256 of the files it finds when it starts, and creates
// new random ones when it finds none. Hub ExecRules freeze and thaw the pod:
// the freeze's marker file is in the snapshot and the restored volume, the
// thaw's only in the source volume (it ran after the volume was read).
func TestVolumeDataMigratesByteIdentical(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	hub, spoke1, spoke2 := testFleet.Hub.Client, testFleet.Spokes[0], testFleet.Spokes[1]
	const team, container = "team-voldata", "voldata-backups"
	loc, id := validTeamLocation(g, ctx, team, container, spoke1, spoke2)
	ns := "vol-" + rand.String(4)

	t.Log("a Deployment writes 8 MiB of random data, a small file and a symlink into its claim, then prints their sha256")
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	g.Expect(spoke1.Client.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})).To(Succeed())
	labels := map[string]string{"app": "store"}
	script := `if [ ! -e /data/done ]; then mkdir -p /data/sub; dd if=/dev/urandom of=/data/big bs=1048576 count=8 2>/dev/null; ` +
		`echo "$(date) $RANDOM" > /data/sub/small; ln -s big /data/link; touch /data/done; fi; ` +
		`echo sums-begin; cd /data && sha256sum big sub/small done; echo sums-end; exec sleep 3600`
	g.Expect(spoke1.Client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "store", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
						Command:         []string{"/busybox", "sh", "-c", script},
						SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}, // the host-path volume is root's
						VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
				},
			},
		},
	})).To(Succeed())
	before := startupSums(g, ctx, spoke1, ns, labels)
	t.Logf("spoke-1's pod found at its start:\n%s", before)
	source := volumeSums(g, ctx, spoke1, ns, "data")
	g.Expect(source).To(HaveKey("big"))
	g.Expect(source).To(HaveKeyWithValue("link", "-> big"))

	t.Log("hub ExecRules freeze and thaw the pod: the freeze writes a fresh token and the node's uptime into /data/frozen, the thaw its uptime into /data/thawed")
	token := rand.String(16)
	storePods := &metav1.LabelSelector{MatchLabels: labels}
	rules := []*fleetv1alpha1.ExecRule{
		execRule(team, "freeze", backupv1alpha1.ExecAction{Name: "freeze", PodSelector: *storePods, Command: []string{"/busybox", "sh", "-c",
			`echo "frozen ` + token + ` $(cut -d' ' -f1 /proc/uptime)" | tee /data/frozen`}}),
		execRule(team, "thaw", backupv1alpha1.ExecAction{Name: "thaw", PodSelector: *storePods, Command: []string{"/busybox", "sh", "-c",
			`echo "thawed $(cut -d' ' -f1 /proc/uptime)" | tee /data/thawed`}}),
	}
	createExecRules(g, ctx, hub, rules...)

	t.Log("a hub Backup of the namespace with the freeze and thaw backs the claim's data up: Success, backup.json names the snapshot, the mover pod is gone")
	b := hubBackup(team, "volumes", spoke1, loc.Name, ns)
	b.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze"}, Post: []backupv1alpha1.ObjectName{"thaw"}}
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, b, hubBackupPhase, 5*time.Minute)).To(Equal("Success"), "%+v", b.Status.Conditions)
	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, b.Name)}, ab)).To(Succeed())
	t.Logf("backup: %s; progress %+v", ab.Status.Conditions[0].Message, ab.Status.Progress)
	g.Expect(ab.Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("with the data of 1 PersistentVolumeClaims"))))
	g.Expect(ab.Status.Progress.BytesDone).To(BeNumerically(">=", 8<<20), "progress counts the volume's bytes")
	g.Expect(ab.Status.Hooks).To(ConsistOf(
		And(HaveField("Stage", backupv1alpha1.StagePreExecRule), HaveField("Name", "freeze"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
		And(HaveField("Stage", backupv1alpha1.StagePostExecRule), HaveField("Name", "thaw"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
	))
	expectNoMovers(g, ctx, spoke1, ns)

	t.Log("spoke-1's volume now holds both markers; what was backed up is the volume as it was frozen: the frozen marker, not the thawed one")
	root := volumeRoot(g, ctx, spoke1, ns, "data")
	frozen, err := os.ReadFile(filepath.Join(root, "frozen"))
	g.Expect(err).NotTo(HaveOccurred(), "the pre hook wrote into the claim")
	thawed, err := os.ReadFile(filepath.Join(root, "thawed"))
	g.Expect(err).NotTo(HaveOccurred(), "the post hook wrote into the claim")
	t.Logf("markers on spoke-1's volume after the run: /data/frozen %q, /data/thawed %q", frozen, thawed)
	g.Expect(string(frozen)).To(HavePrefix("frozen " + token + " "))
	g.Expect(string(thawed)).To(HavePrefix("thawed "))
	frozenAt, thawedAt := uptime(g, strings.Fields(string(frozen))[2]), uptime(g, strings.Fields(string(thawed))[1])
	g.Expect(thawedAt).To(BeNumerically(">", frozenAt), "node uptime: frozen at %.2f s, thawed at %.2f s", frozenAt, thawedAt)
	expected := withEntry(source, "frozen", sha256Hex(frozen))
	g.Expect(volumeSums(g, ctx, spoke1, ns, "data")).To(Equal(withEntry(expected, "thawed", sha256Hex(thawed))), "the pod's files untouched, the two markers added")

	t.Log("a hub Restore to spoke-2 creates a new claim, fills it before the Deployment, and the Deployment's pod finds the files")
	rs := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "volumes-to-spoke-2"},
		Spec: fleetv1alpha1.RestoreSpec{
			Backup:  backupv1alpha1.ObjectName(b.Name),
			Cluster: backupv1alpha1.ClusterName(spoke2.Name),
		},
	}
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Eventually(func() backupv1alpha1.RestorePhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
		return rs.Status.Phase
	}, 5*time.Minute, 250*time.Millisecond).Should(BeElementOf(backupv1alpha1.RestoreSuccess, backupv1alpha1.RestoreFailed, backupv1alpha1.RestorePartialSuccess))
	g.Expect(rs.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), "conditions: %+v", rs.Status.Conditions)
	restored := volumeSums(g, ctx, spoke2, ns, "data")
	g.Expect(restored).To(Equal(expected), "every file byte-identical (sha256), the symlink kept, the frozen marker as the pre hook wrote it and no thawed marker")
	restoredFrozen, err := os.ReadFile(filepath.Join(volumeRoot(g, ctx, spoke2, ns, "data"), "frozen"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(restoredFrozen).To(Equal(frozen))
	t.Logf("spoke-2's restored volume: /data/frozen %q, no /data/thawed (%d files)", restoredFrozen, len(restored))
	after := startupSums(g, ctx, spoke2, ns, labels)
	t.Logf("spoke-2's pod found at its start:\n%s", after)
	g.Expect(after).To(Equal(before), "the data was in the claim before the Deployment's pod started")
	expectNoMovers(g, ctx, spoke2, ns)

	src, dst := &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaim{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, src)).To(Succeed())
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, dst)).To(Succeed())
	g.Expect(dst.Spec.VolumeName).NotTo(Equal(src.Spec.VolumeName), "a new volume, not spoke-1's")

	t.Log("backup.json names the snapshot in spoke-1's repository of the namespace; deleting the hub Backup deletes the snapshot")
	targetName := backuplocation.TargetName(team, loc.Name)
	store := teamStore(g, id, spoke1, backupv1alpha1.TargetServiceAccount(targetName), container, team)
	rd, err := archive.Open(ctx, store, strings.TrimSuffix(backupDir(spoke1, b), "/"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rd.Manifest().Volumes).To(ConsistOf(And(HaveField("Namespace", ns), HaveField("Claim", "data"),
		HaveField("Repository", "lifeboat/v1/repositories/"+spoke1.Name+"/"+ns+"/"), HaveField("Bytes", BeNumerically(">=", 8<<20)))))
	snap := rd.Manifest().Volumes[0].Snapshot
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: targetName}, target)).To(Succeed())
	readSnapshot := func() (map[string]string, error) {
		rep, err := volumes.Open(ctx, store, spoke1.Name, ns, volumes.Password(target, nil, spoke1.Name, ns))
		g.Expect(err).NotTo(HaveOccurred())
		defer rep.Close(ctx)
		return snapshotSums(g, ctx, rep, snap)
	}
	snapped, err := readSnapshot()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(snapped).To(Equal(expected), "the snapshot holds the frozen marker the pre hook wrote, and not the thawed one")
	g.Expect(hub.Delete(ctx, b)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKeyFromObject(b), &fleetv1alpha1.Backup{}))
	}, 3*time.Minute, 500*time.Millisecond).Should(BeTrue())
	_, err = readSnapshot()
	g.Expect(err).To(MatchError(ContainSubstring(snap)))

	t.Log("spoke-1's scheduled maintenance (every 30 s in the fleet) takes the repository: kopia's schedule is in it, owned by lifeboat@spoke-1")
	g.Eventually(func() error {
		_, err := store.Stat(ctx, "lifeboat/v1/repositories/"+spoke1.Name+"/"+ns+"/kopia.maintenance")
		return err
	}, 3*time.Minute, time.Second).Should(Succeed())
	rep, err := volumes.Open(ctx, store, spoke1.Name, ns, volumes.Password(target, nil, spoke1.Name, ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer rep.Close(ctx)
	params, err := maintenance.GetParams(ctx, rep.Repository)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(params.Owner).To(Equal(volumes.MaintenanceOwner(spoke1.Name)))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// snapshotSums maps every path in the volume snapshot snap of rep, as
// volumeSums does for a volume (read into memory: the test's volume is small).
func snapshotSums(g Gomega, ctx context.Context, rep *volumes.Repository, snap string) (map[string]string, error) {
	var tarball closingBuffer
	if _, err := rep.Restore(ctx, snap, &tarball); err != nil {
		return nil, err
	}
	sums := map[string]string{}
	tr := tar.NewReader(&tarball.Buffer)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return sums, nil
		}
		g.Expect(err).NotTo(HaveOccurred(), "the snapshot is a tar stream")
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		switch h.Typeflag {
		case tar.TypeSymlink:
			sums[name] = "-> " + h.Linkname
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			g.Expect(err).NotTo(HaveOccurred())
			sums[name] = sha256Hex(b)
		}
	}
}

type closingBuffer struct{ bytes.Buffer }

func (*closingBuffer) Close() error { return nil }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withEntry is a copy of m with k set to v.
func withEntry(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}

// startupSums is what the Deployment's pod printed between sums-begin and
// sums-end when it started.
func startupSums(g Gomega, ctx context.Context, s *fleet.Spoke, ns string, labels map[string]string) string {
	cs, err := kubernetes.NewForConfig(s.ControlPlane.Config)
	g.Expect(err).NotTo(HaveOccurred())
	var sums string
	g.Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(s.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(labels))).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(1))
		raw, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		_, rest, ok := strings.Cut(string(raw), "sums-begin\n")
		g.Expect(ok).To(BeTrue())
		sums, _, ok = strings.Cut(rest, "sums-end")
		g.Expect(ok).To(BeTrue())
	}, 4*time.Minute, time.Second).Should(Succeed())
	return sums
}

// volumeSums maps every path in the claim's volume (read on this host, where
// the fleet's host-path volumes are) to the sha256 of a file or "-> target"
// of a symlink.
func volumeSums(g Gomega, ctx context.Context, s *fleet.Spoke, ns, claim string) map[string]string {
	root := volumeRoot(g, ctx, s, ns, claim)
	sums := map[string]string{}
	g.Expect(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			sums[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		sums[rel] = sha256Hex(b)
		return err
	})).To(Succeed())
	return sums
}

// volumeRoot is the directory on this host of the claim's host-path volume.
func volumeRoot(g Gomega, ctx context.Context, s *fleet.Spoke, ns, claim string) string {
	pv := &corev1.PersistentVolume{}
	g.Expect(s.Client.Get(ctx, client.ObjectKey{Name: waitBound(g, ctx, s.Client, ns, claim)}, pv)).To(Succeed())
	g.Expect(pv.Spec.HostPath).NotTo(BeNil())
	return pv.Spec.HostPath.Path
}

// expectNoMovers checks that no mover pod is left in ns.
func expectNoMovers(g Gomega, ctx context.Context, s *fleet.Spoke, ns string) {
	g.Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(s.Client.List(ctx, pods, client.InNamespace(ns), client.HasLabels{volumes.MoverLabel})).To(Succeed())
		g.Expect(pods.Items).To(BeEmpty())
	}, time.Minute, 500*time.Millisecond).Should(Succeed())
}
