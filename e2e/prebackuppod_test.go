package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// preBackupPodBytes is the size of the dump PreBackupPod's output.
const preBackupPodBytes = 4 << 20

// A namespace on spoke-1 has four PreBackupPods: dump writes 4 MiB of
// known bytes and has a restoreCommand; norestore backs up but has none;
// broken's command exits 2; never-ready's pod cannot start. A hub Backup
// makes a pod of each on the real node and deletes it afterwards (none is
// left, also after the failures): PartialSuccess naming broken and
// never-ready, backup.json lists the two outputs with their PreBackupPods,
// the repository holds dump's bytes. Restored onto spoke-2, dump's pod
// made from the restored PreBackupPod writes its standard input into a
// host directory, byte for byte; norestore makes the restore
// PartialSuccess, named; no pod is left there either.
func TestPreBackupPodBacksUpAndRestores(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	hub, spoke1, spoke2 := testFleet.Hub.Client, testFleet.Spokes[0], testFleet.Spokes[1]
	const team, container = "team-prebackup", "prebackup-backups"
	loc, id := validTeamLocation(g, ctx, team, container, spoke1, spoke2)
	ns := "pbp-" + rand.String(4)
	defer func() {
		for _, s := range []*fleet.Spoke{spoke1, spoke2} {
			_ = s.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}()
	// The restore command writes into this directory of the host, where
	// the fleet's nodes run.
	out, err := os.MkdirTemp("", "lifeboat-e2e-prebackuppod-")
	g.Expect(err).NotTo(HaveOccurred())
	defer os.RemoveAll(out)

	payload := bytes.Repeat([]byte("lifeboat prebackuppod payload\n"), preBackupPodBytes/30+1)[:preBackupPodBytes]
	sum := sha256.Sum256(payload)
	want := hex.EncodeToString(sum[:])

	t.Log("four PreBackupPods on spoke-1: dump (4 MiB, with a restoreCommand), norestore, broken (exit 2), never-ready (an image the node does not have)")
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	sh := func(script string) []string { return []string{"/busybox", "sh", "-c", script} }
	for _, p := range []*backupv1alpha1.PreBackupPod{
		busyboxPreBackupPod(ns, "dump", out, "dump.txt", sh("/busybox yes 'lifeboat prebackuppod payload' | /busybox head -c 4194304"),
			sh("/busybox cat > /out/restored.part && /busybox mv /out/restored.part /out/restored && /busybox wc -c < /out/restored")),
		busyboxPreBackupPod(ns, "norestore", out, "small.txt", sh("echo small"), nil),
		busyboxPreBackupPod(ns, "broken", out, "broken.sql", sh("echo '-- partial'; echo 'mysqldump: Got error: 2002' >&2; exit 2"), nil),
		func() *backupv1alpha1.PreBackupPod {
			p := busyboxPreBackupPod(ns, "never-ready", out, "never.sql", sh("echo never"), nil)
			p.Spec.Pod.Spec.Containers[0].Image = "lifeboat.dev/not-on-any-node:1"
			p.Spec.ReadyTimeout = &metav1.Duration{Duration: 10 * time.Second}
			return p
		}(),
	} {
		g.Expect(spoke1.Client.Create(ctx, p)).To(Succeed())
	}

	t.Log("a hub Backup of the namespace: PartialSuccess naming broken and never-ready; no pod of a PreBackupPod is left")
	b := hubBackup(team, "prebackup", spoke1, loc.Name, ns)
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, b, hubBackupPhase, 8*time.Minute)).To(BeEquivalentTo(fleetv1alpha1.BackupPartialSuccess), "%+v", b.Status.Conditions)
	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: dispatch.SpokeName(team, b.Name)}, ab)).To(Succeed())
	completed := meta.FindStatusCondition(ab.Status.Conditions, backupv1alpha1.ConditionCompleted).Message
	t.Logf("ApplicationBackup: %s", completed)
	g.Expect(completed).To(ContainSubstring("with the output of 2 backup commands"))
	g.Expect(completed).To(ContainSubstring("the output of 2 backup commands not backed up: "))
	g.Expect(completed).To(MatchRegexp(`PreBackupPod %s/broken \(pod %[1]s/broken-\w+\) file broken.sql \(exit code 2 \(standard error: "mysqldump: Got error: 2002\\n"\)\)`, ns))
	g.Expect(completed).To(MatchRegexp(`PreBackupPod %s/never-ready file never.sql \(pod never-ready-\w+ of PreBackupPod %[1]s/never-ready: not ready after 10s`, ns))
	expectNoPreBackupPodPods(g, ctx, spoke1, ns)

	for name, outcome := range map[string]backupv1alpha1.ExecOutcome{"dump": backupv1alpha1.ExecSucceeded, "norestore": backupv1alpha1.ExecSucceeded,
		"broken": backupv1alpha1.ExecFailed, "never-ready": backupv1alpha1.ExecFailed} {
		p := &backupv1alpha1.PreBackupPod{}
		g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p)).To(Succeed())
		g.Expect(p.Status.LastBackup).NotTo(BeNil(), name)
		g.Expect(p.Status.LastBackup.Outcome).To(Equal(outcome), "%s: %+v", name, p.Status.LastBackup)
		g.Expect(p.Status.LastBackup.BackupID).To(Equal(ab.Status.BackupID))
	}

	t.Log("backup.json lists the outputs of dump and norestore with their PreBackupPods; the repository holds dump's bytes")
	targetName := backuplocation.TargetName(team, loc.Name)
	store := teamStore(g, id, spoke1, backupv1alpha1.TargetServiceAccount(targetName), container, team)
	rd, err := archive.Open(ctx, store, strings.TrimSuffix(backupDir(spoke1, b), "/"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rd.Manifest().Commands).To(ConsistOf(
		And(HaveField("Namespace", ns), HaveField("PreBackupPod", "dump"), HaveField("Pod", HavePrefix("dump-")), HaveField("Container", "dump"),
			HaveField("File", "dump.txt"), HaveField("Bytes", int64(preBackupPodBytes)), HaveField("Repository", "lifeboat/v1/repositories/"+spoke1.Name+"/"+ns+"/")),
		And(HaveField("PreBackupPod", "norestore"), HaveField("File", "small.txt"), HaveField("Bytes", int64(len("small\n")))),
	))
	var snap string
	for _, c := range rd.Manifest().Commands {
		if c.PreBackupPod == "dump" {
			snap = c.Snapshot
		}
	}
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: targetName}, target)).To(Succeed())
	rep, err := volumes.Open(ctx, store, spoke1.Name, ns, volumes.Password(target, nil, spoke1.Name, ns))
	g.Expect(err).NotTo(HaveOccurred())
	f, err := rep.OpenFile(ctx, snap)
	g.Expect(err).NotTo(HaveOccurred())
	h := sha256.New()
	_, err = io.Copy(h, f)
	g.Expect(err).NotTo(HaveOccurred())
	f.Close()
	rep.Close(ctx)
	g.Expect(hex.EncodeToString(h.Sum(nil))).To(Equal(want), "the snapshot holds the command's output")

	t.Log("a hub Restore to spoke-2: dump's restoreCommand writes its input into the host directory; norestore makes it PartialSuccess")
	rs := tenantRestore(team, "prebackup-to-spoke-2", b.Name, spoke2.Name, backupv1alpha1.RestoreOptions{})
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, rs, func(r *fleetv1alpha1.Restore) string { return string(r.Status.Phase) }, 8*time.Minute)).
		To(BeEquivalentTo(backupv1alpha1.RestorePartialSuccess), "conditions: %+v", rs.Status.Conditions)
	ar := &backupv1alpha1.ApplicationRestore{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: dispatch.SpokeName(team, rs.Name)}, ar)).To(Succeed())
	restoreMessage := meta.FindStatusCondition(ar.Status.Conditions, backupv1alpha1.ConditionReady).Message
	t.Logf("ApplicationRestore: %s", restoreMessage)
	g.Expect(restoreMessage).To(ContainSubstring("PreBackupPod %s/norestore has no restoreCommand: its output stays in snapshot", ns))
	restored, err := os.ReadFile(filepath.Join(out, "restored"))
	g.Expect(err).NotTo(HaveOccurred())
	got := sha256.Sum256(restored)
	g.Expect(hex.EncodeToString(got[:])).To(Equal(want), "byte for byte (%d bytes)", len(restored))
	expectNoPreBackupPodPods(g, ctx, spoke2, ns)
}

// busyboxPreBackupPod is a PreBackupPod in ns whose pod idles in busybox,
// as root (to write the host directory out, mounted at /out), ready once
// busybox's commands are on its PATH.
func busyboxPreBackupPod(ns, name, out, file string, backup, restore []string) *backupv1alpha1.PreBackupPod {
	return &backupv1alpha1.PreBackupPod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: backupv1alpha1.PreBackupPodSpec{
			BackupCommand: backup, RestoreCommand: restore, FileName: file,
			Pod: backupv1alpha1.PreBackupPodTemplate{
				Metadata: backupv1alpha1.PodTemplateMetadata{Labels: map[string]string{"app": "dump"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "dump", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
						// Like any image with a shell: sh, tee and wc on the PATH.
						Command: []string{"/busybox", "sh", "-c", "/busybox mkdir -p /tmp/bin && /busybox --install -s /tmp/bin && exec /busybox sleep 3600"},
						Env:     []corev1.EnvVar{{Name: "PATH", Value: "/tmp/bin"}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/busybox", "test", "-e", "/tmp/bin/wc"}}},
							PeriodSeconds: 1},
						SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)},
						VolumeMounts:    []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
					}},
					Volumes: []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{
						HostPath: &corev1.HostPathVolumeSource{Path: out, Type: ptr.To(corev1.HostPathDirectory)}}}},
				},
			},
		},
	}
}

// expectNoPreBackupPodPods checks that no pod made from a PreBackupPod is left in ns.
func expectNoPreBackupPodPods(g Gomega, ctx context.Context, s *fleet.Spoke, ns string) {
	pods := &corev1.PodList{}
	g.Expect(s.Client.List(ctx, pods, client.InNamespace(ns), client.HasLabels{backupv1alpha1.PreBackupPodLabel})).To(Succeed())
	g.Expect(pods.Items).To(BeEmpty(), "no pod of a PreBackupPod is left on %s", s.Name)
}

// A team's PreBackupPod makes the spoke create a pod in the team's
// namespace and exec into it: the spoke's admission policy admits one only
// from a user who may do both there.
func TestSelfServicePreBackupPodsNeedPodAndExecRights(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	ns := "team-pbp-" + rand.String(4)
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	defer func() {
		_ = spoke.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	const user = "dave@team-pbp"
	g.Expect(spoke.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dumper"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"prebackuppods"}, Verbs: []string{"create", "get"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}},
		}})).To(Succeed())
	bindUser(g, ctx, spoke.Client, ns, user, "Role", "dumper")
	dave := impersonating(g, spoke, user)
	dump := func(name string) *backupv1alpha1.PreBackupPod {
		return busyboxPreBackupPod(ns, name, "/nonexistent", "dump.sql", []string{"/busybox", "true"}, nil)
	}

	err := dave.Create(ctx, dump("refused"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("a PreBackupPod makes the spoke create a pod in namespace " + ns + " and exec into it, and " + user + " may not do both there"))

	g.Expect(spoke.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exec"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}}}})).To(Succeed())
	bindUser(g, ctx, spoke.Client, ns, user, "Role", "exec")
	g.Eventually(func() error { return dave.Create(ctx, dump("allowed")) }, 30*time.Second, 500*time.Millisecond).Should(Succeed(),
		"once he may exec into the pods")
}
