package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// MoverPort is where a mover listens on its pod's IP.
const MoverPort = 8080

// MoverLabel marks the pods Lifeboat creates to move a volume's data; its
// value is "backup" or "restore".
const MoverLabel = "lifeboat.dev/mover"

// moverMount is where a mover mounts the volume.
const moverMount = "/data"

// PodSettings are how the movers run: the spoke's own image, and what the
// cluster's admin sets for them.
type PodSettings struct {
	Image             string
	PullPolicy        corev1.PullPolicy
	Resources         corev1.ResourceRequirements
	NodeSelector      map[string]string
	Tolerations       []corev1.Toleration
	PriorityClassName string
}

// Movers starts mover pods.
type Movers struct {
	Kube     kubernetes.Interface
	Settings PodSettings
	// Timeout bounds waiting for a mover to be ready (default 5 minutes).
	Timeout time.Duration
	// Lifetime is the pod's activeDeadlineSeconds (default 24 hours): a
	// mover the spoke could not delete ends by itself.
	Lifetime time.Duration
}

// For is m with the target's mover settings: each one the target sets
// replaces the spoke's own.
func (m *Movers) For(t *backupv1alpha1.BackupTarget) *Movers {
	ms := t.Spec.MoverSettings.DeepCopy()
	if ms == nil {
		return m
	}
	c := *m
	if r := ms.Resources; r != nil {
		c.Settings.Resources = corev1.ResourceRequirements{Requests: r.Requests, Limits: r.Limits}
	}
	if ms.NodeSelector != nil {
		c.Settings.NodeSelector = make(map[string]string, len(ms.NodeSelector))
		for k, v := range ms.NodeSelector {
			c.Settings.NodeSelector[k] = string(v)
		}
	}
	if ms.Tolerations != nil {
		c.Settings.Tolerations = make([]corev1.Toleration, len(ms.Tolerations))
		for i, t := range ms.Tolerations {
			c.Settings.Tolerations[i] = t.Toleration()
		}
	}
	if ms.PriorityClassName != "" {
		c.Settings.PriorityClassName = ms.PriorityClassName
	}
	return &c
}

// Start creates a mover pod for the claim namespace/claim, read-only (a
// backup) or writable (a restore), waits until it serves and returns its
// client. stop tells the mover to exit and deletes its pod, whatever the
// outcome; call it always.
func (m *Movers) Start(ctx context.Context, namespace, claim string, write bool) (c *MoverClient, stop func(), err error) {
	if m.Settings.Image == "" {
		return nil, func() {}, fmt.Errorf("no mover image: the spoke's --mover-image is not set")
	}
	token, err := randomHex(32)
	if err != nil {
		return nil, func() {}, err
	}
	suffix, err := randomHex(3)
	if err != nil {
		return nil, func() {}, err
	}
	node := ""
	if !write {
		if node, err = m.nodeOf(ctx, namespace, claim); err != nil {
			return nil, func() {}, err
		}
	}
	pod := m.pod(namespace, claim, "lifeboat-mover-"+suffix, token, node, write)
	created, err := m.Kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, func() {}, fmt.Errorf("creating the mover pod for claim %s/%s: %w", namespace, claim, err)
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if c != nil {
			_ = c.Done(sctx)
		}
		// A pod that could not be deleted ends at its activeDeadlineSeconds.
		_ = m.Kube.CoreV1().Pods(namespace).Delete(sctx, created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}
	ip, err := m.waitReady(ctx, namespace, created.Name)
	if err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("mover pod %s/%s for claim %s: %w", namespace, created.Name, claim, err)
	}
	c = &MoverClient{Base: "http://" + net.JoinHostPort(ip, strconv.Itoa(MoverPort)), Token: token}
	return c, stop, nil
}

// nodeOf is the node of a running pod that mounts the claim, if any: a
// ReadWriteOnce volume can be mounted only there.
func (m *Movers) nodeOf(ctx context.Context, namespace, claim string) (string, error) {
	pods, err := m.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing the pods of namespace %s: %w", namespace, err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				return p.Spec.NodeName, nil
			}
		}
	}
	return "", nil
}

func (m *Movers) pod(namespace, claim, name, token, node string, write bool) *corev1.Pod {
	mode, caps := "read", []corev1.Capability{"DAC_READ_SEARCH"}
	if write {
		mode, caps = "write", []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"}
	}
	lifetime := m.Lifetime
	if lifetime <= 0 {
		lifetime = 24 * time.Hour
	}
	purpose := "backup"
	if write {
		purpose = "restore"
	}
	s := m.Settings
	if node != "" {
		// The pod that mounts the claim chose the node; the kubelet would
		// refuse a mover whose node selector does not match it.
		s.NodeSelector = nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "lifeboat", MoverLabel: purpose},
			Annotations: map[string]string{"lifeboat.dev/claim": claim},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(int64(lifetime / time.Second)),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			NodeName:                      node,
			NodeSelector:                  s.NodeSelector,
			Tolerations:                   s.Tolerations,
			PriorityClassName:             s.PriorityClassName,
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "mover",
				Image:           s.Image,
				ImagePullPolicy: s.PullPolicy,
				Args:            []string{"mover", "--mode=" + mode, "--path=" + moverMount, fmt.Sprintf("--listen=:%d", MoverPort)},
				Env:             []corev1.EnvVar{{Name: TokenEnv, Value: token}},
				Ports:           []corev1.ContainerPort{{Name: "mover", ContainerPort: MoverPort, Protocol: corev1.ProtocolTCP}},
				Resources:       s.Resources,
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: pathReady, Port: intstrPort()}},
					PeriodSeconds: 1,
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: moverMount, ReadOnly: !write}},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser:                ptr.To[int64](0), // reads (writes) files of every owner
					RunAsNonRoot:             ptr.To(false),
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps},
				},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: !write},
			}}},
		},
	}
}

// waitReady waits until the pod is ready and returns its IP.
func (m *Movers) waitReady(ctx context.Context, namespace, name string) (string, error) {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not created yet"
	for {
		p, err := m.Kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
			return "", fmt.Errorf("the pod ended (%s): %s", p.Status.Phase, describe(p))
		case p.Status.PodIP != "" && ready(p):
			return p.Status.PodIP, nil
		default:
			last = describe(p)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not ready after %s: %s", timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describe says in a line why a pod is not ready.
func describe(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return w.Reason + ": " + w.Message
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("%s (exit code %d): %s", t.Reason, t.ExitCode, t.Message)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return string(c.Type) + ": " + c.Message
		}
	}
	return "phase " + string(p.Status.Phase)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func intstrPort() intstr.IntOrString { return intstr.FromInt32(MoverPort) }

// Fill restores the snapshot v, from the repository of cluster, into the
// claim namespace/name through a write-mode mover, and checks that all of
// its bytes arrived.
func (m *Movers) Fill(ctx context.Context, blobs Blobs, cluster, password string, v archive.VolumeSnapshot, namespace, name string) error {
	rep, err := OpenNamed(ctx, blobs, cluster, v.Namespace, v.Repository, password)
	if err != nil {
		return err
	}
	defer rep.Close(context.WithoutCancel(ctx))
	mover, stop, err := m.Start(ctx, namespace, name, true)
	defer stop()
	if err != nil {
		return err
	}
	n, err := rep.Fill(ctx, v.Snapshot, mover)
	if err != nil {
		return err
	}
	if n.Bytes != v.Bytes {
		return fmt.Errorf("the mover wrote %d bytes of snapshot %s, which holds %d", n.Bytes, v.Snapshot, v.Bytes)
	}
	return nil
}
