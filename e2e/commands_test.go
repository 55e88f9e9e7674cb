package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// dumpBytes is the size of the backup command's output: large enough that
// a spoke holding it in memory would show, next to kopia's own buffers (its
// packs of chunks, about 140 MiB of resident set under the spoke's default
// GC, whatever the size: see docs/benchmarks.md). With volume maintenance
// and the other tests' leftovers in the same process the spoke grew by up
// to 267 MiB during a 400 MiB output under CI load, so the output is twice
// that: a spoke that held it would grow by at least 800 MiB.
const dumpBytes = 800 << 20

// A Deployment's backup command (a pod annotation) writes 800 MiB to its
// standard output on spoke-1: the spoke streams it into the location's
// kopia repository while its RSS stays flat, and backup.json names it. A
// second Deployment's command exits non-zero: the backup is PartialSuccess
// naming its pod, and holds no output of it. Restored on spoke-2, the
// output goes byte for byte into the restore command of the Deployment's new
// pod. Deleting the Backup deletes the output's snapshot.
func TestBackupCommandStreamsItsOutput(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	hub, spoke1, spoke2 := testFleet.Hub.Client, testFleet.Spokes[0], testFleet.Spokes[1]
	const team, container = "team-commands", "commands-backups"
	loc, id := validTeamLocation(g, ctx, team, container, spoke1, spoke2)
	ns := "cmd-" + rand.String(4)
	defer func() {
		for _, s := range []*fleet.Spoke{spoke1, spoke2} {
			_ = s.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}()

	t.Logf("Deployment dump makes %d MiB of random data at its start and prints its sha256; its backup command cats it, its restore command writes what it reads to /data/restored", dumpBytes>>20)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	dump := commandDeployment(ns, "dump", `[ -e /data/dump ] || head -c `+strconv.Itoa(dumpBytes)+` /dev/urandom > /data/dump; `+
		`echo "sum $(sha256sum /data/dump)"; touch /data/ready; exec sleep 3600`, map[string]string{
		backupv1alpha1.BackupCommandAnnotation:  "cat /data/dump",
		backupv1alpha1.BackupFileAnnotation:     "dump.bin",
		backupv1alpha1.RestoreCommandAnnotation: "cat > /data/restored.part && mv /data/restored.part /data/restored",
	})
	broken := commandDeployment(ns, "broken", "touch /data/ready; exec sleep 3600", map[string]string{
		backupv1alpha1.BackupCommandAnnotation: `echo "-- partial dump"; echo "pg_dump: error: connection to server failed" >&2; exit 3`,
	})
	g.Expect(spoke1.Client.Create(ctx, dump)).To(Succeed())
	g.Expect(spoke1.Client.Create(ctx, broken)).To(Succeed())
	dumpPod := readyPod(g, ctx, spoke1, ns, "dump")
	brokenPod := readyPod(g, ctx, spoke1, ns, "broken")
	sum := strings.Fields(execIn(g, ctx, spoke1, dumpPod, "sha256sum /data/dump"))[0]
	t.Logf("pod %s made /data/dump, sha256 %s", dumpPod.Name, sum)

	t.Log("a hub Backup of the namespace; the test samples the spoke process's RSS while it runs")
	pid, err := testFleet.SpokeManagerPid(ctx, spoke1)
	g.Expect(err).NotTo(HaveOccurred())
	rssBefore, hwmBefore := memory(g, pid)
	peak, stopSampling := sampleRSS(pid)
	b := hubBackup(team, "commands", spoke1, loc.Name, ns)
	started := time.Now()
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, b, hubBackupPhase, 10*time.Minute)).To(BeEquivalentTo(fleetv1alpha1.BackupPartialSuccess), "%+v", b.Status.Conditions)
	took := time.Since(started)
	stopSampling()
	rssAfter, hwmAfter := memory(g, pid)
	t.Logf("spoke-1's manager (pid %d): VmRSS %d MiB before the backup, at most %d MiB while it ran (sampled every 100 ms), %d MiB after; VmHWM %d MiB before, %d MiB after; the backup took %s",
		pid, rssBefore>>10, peak()>>10, rssAfter>>10, hwmBefore>>10, hwmAfter>>10, took.Round(time.Second))
	g.Expect(peak()-rssBefore).To(BeNumerically("<", dumpBytes/2>>10), "the spoke streams the output: its RSS grows by less than half the output")

	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, b.Name)}, ab)).To(Succeed())
	completed := ab.Status.Conditions[0].Message
	for _, c := range ab.Status.Conditions {
		if c.Type == backupv1alpha1.ConditionCompleted {
			completed = c.Message
		}
	}
	t.Logf("ApplicationBackup: %s; progress %+v", completed, ab.Status.Progress)
	g.Expect(completed).To(ContainSubstring("with the output of 1 backup commands"))
	g.Expect(completed).To(ContainSubstring("the output of 1 backup command not backed up: pod %s/%s of Deployment/broken file broken.out (exit code 3 (standard error: %q))",
		ns, brokenPod.Name, "pg_dump: error: connection to server failed\n"))
	g.Expect(ab.Status.Progress.BytesDone).To(BeNumerically(">=", dumpBytes), "progress counts the output's bytes")

	t.Log("backup.json names the output's snapshot in spoke-1's repository of the namespace, and nothing of the failed command; the snapshot holds the bytes")
	targetName := backuplocation.TargetName(team, loc.Name)
	store := teamStore(g, id, spoke1, backupv1alpha1.TargetServiceAccount(targetName), container, team)
	rd, err := archive.Open(ctx, store, strings.TrimSuffix(backupDir(spoke1, b), "/"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rd.Manifest().Commands).To(ConsistOf(archive.CommandOutput{
		Namespace: ns, Pod: dumpPod.Name, Owner: "Deployment/dump", Container: "app", File: "dump.bin",
		Snapshot: rd.Manifest().Commands[0].Snapshot, Repository: "lifeboat/v1/repositories/" + spoke1.Name + "/" + ns + "/", Bytes: dumpBytes,
	}))
	snap := rd.Manifest().Commands[0].Snapshot
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: targetName}, target)).To(Succeed())
	readSnapshot := func() (string, error) {
		rep, err := volumes.Open(ctx, store, spoke1.Name, ns, volumes.Password(target, nil, spoke1.Name, ns))
		g.Expect(err).NotTo(HaveOccurred())
		defer rep.Close(ctx)
		f, err := rep.OpenFile(ctx, snap)
		if err != nil {
			return "", err
		}
		defer f.Close()
		h := sha256.New()
		_, err = io.Copy(h, f)
		return hex.EncodeToString(h.Sum(nil)), err
	}
	g.Expect(readSnapshot()).To(Equal(sum))

	t.Log("a hub Restore to spoke-2: the Deployment's new pod gets the output through its restore command")
	rs := tenantRestore(team, "commands-to-spoke-2", b.Name, spoke2.Name, backupv1alpha1.RestoreOptions{})
	started = time.Now()
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, rs, func(r *fleetv1alpha1.Restore) string { return string(r.Status.Phase) }, 10*time.Minute)).
		To(BeEquivalentTo(backupv1alpha1.RestoreSuccess), "conditions: %+v", rs.Status.Conditions)
	t.Logf("the restore took %s", time.Since(started).Round(time.Second))
	restoredPod := readyPod(g, ctx, spoke2, ns, "dump")
	restored := strings.Fields(execIn(g, ctx, spoke2, restoredPod, "sha256sum /data/restored && wc -c < /data/restored"))
	g.Expect(restored).To(HaveLen(3))
	g.Expect(restored[0]).To(Equal(sum), "byte for byte")
	g.Expect(restored[2]).To(Equal(strconv.Itoa(dumpBytes)))

	t.Log("deleting the hub Backup deletes the output's snapshot")
	g.Expect(hub.Delete(ctx, b)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKeyFromObject(b), &fleetv1alpha1.Backup{}))
	}, 3*time.Minute, 500*time.Millisecond).Should(BeTrue())
	_, err = readSnapshot()
	g.Expect(err).To(MatchError(ContainSubstring(snap)))
}

// commandDeployment is a one-pod busybox Deployment with the annotations on
// its pods, running script (with sh on PATH, as in an image with a shell:
// the image has only /busybox, and its user may write only /tmp) and ready
// once /data/ready exists.
func commandDeployment(ns, name, script string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "app", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
						Env:            []corev1.EnvVar{{Name: "PATH", Value: "/tmp/bin"}},
						Command:        []string{"/busybox", "sh", "-c", "/busybox mkdir -p /tmp/bin && /busybox --install -s /tmp/bin || exit 1; " + script},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/busybox", "test", "-e", "/data/ready"}}}, PeriodSeconds: 1},
						VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

// readyPod waits for the ready pod of Deployment name in ns.
func readyPod(g Gomega, ctx context.Context, s *fleet.Spoke, ns, name string) corev1.Pod {
	var pod corev1.Pod
	g.Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(s.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name})).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(1))
		pod = pods.Items[0]
		g.Expect(podexec.Ready(pod)).To(BeTrue(), "pod %s is ready", pod.Name)
	}, 4*time.Minute, time.Second).Should(Succeed())
	return pod
}

// execIn runs script in the pod's first container and returns its output.
func execIn(g Gomega, ctx context.Context, s *fleet.Spoke, pod corev1.Pod, script string) string {
	var out, errOut bytes.Buffer
	err := podexec.Exec(ctx, s.ControlPlane.Config, pod, pod.Spec.Containers[0].Name, []string{"sh", "-c", script}, nil, &out, &errOut)
	g.Expect(err).NotTo(HaveOccurred(), "stderr: %s", errOut.String())
	return out.String()
}

// memory is a process's VmRSS and VmHWM in KiB.
func memory(g Gomega, pid int) (rss, hwm int64) {
	rss, err := statusKiB(pid, "VmRSS:")
	g.Expect(err).NotTo(HaveOccurred())
	return rss, peakRSS(g, pid)
}

// sampleRSS reads a process's VmRSS every 100 ms until stop; peak is the
// highest read, in KiB.
func sampleRSS(pid int) (peak func() int64, stop func()) {
	var mu sync.Mutex
	var highest int64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if kib, err := statusKiB(pid, "VmRSS:"); err == nil {
				mu.Lock()
				highest = max(highest, kib)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
			mu.Lock()
			defer mu.Unlock()
			return highest
		}, func() {
			close(done)
			<-finished
		}
}

// statusKiB reads a field in KiB from /proc/<pid>/status.
func statusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
