package fleet

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The spoke as lifeboat-hub installs it on every cluster (charts/lifeboat-spoke).
const (
	spokeDeployment = "lifeboat-spoke"
	// fleetCAConfigMap holds, in SpokeNamespace, the CAs of the fleet's Entra
	// stand-in and blob proxy, which the spoke trusts through --ca-bundle.
	fleetCAConfigMap = "lifeboat-fleet-ca"
	fleetCADir       = "/etc/lifeboat/fleet-ca"
)

// podURL is u (a server on the host's loopback) as pods on the fleet's nodes
// reach it: at HostAddress, same port.
func podURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	parsed.Host = HostAddress + ":" + parsed.Port()
	return parsed.String()
}

// HostURL is u as the host reaches it: a URL at HostAddress, which only pods
// may use, turned back into its loopback URL; other URLs unchanged. Tests that
// take a URL from what the spokes were given (a hub credential, a target's
// endpoint) call it before using the URL from the host.
func HostURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Hostname() != HostAddress {
		return u
	}
	parsed.Host = "127.0.0.1:" + parsed.Port()
	return parsed.String()
}

// startSpokeNode gives spoke s its node, with the images its pods run.
func (f *Fleet) startSpokeNode(ctx context.Context, s *Spoke) (err error) {
	s.Node, err = StartNode(ctx, s.ControlPlane, f.Images.Pause, f.Images.Spoke, f.Images.WorkloadIdentityWebhook, f.Images.Busybox)
	return err
}

// preparePods lets the pods of spoke s reach the hub, the blob proxy and
// Entra, runs the Workload Identity webhook on it and leaves the fleet's CAs
// where the spoke chart's values (spokeValues) mount them.
func (f *Fleet) preparePods(ctx context.Context, s *Spoke) error {
	for _, u := range []string{f.Hub.URL, f.Azure.Proxy.URL(), f.Azure.Entra.URL()} {
		port, err := strconv.Atoi(mustParse(u).Port())
		if err != nil {
			return err
		}
		if err := s.Node.Expose(port); err != nil {
			return err
		}
	}
	if err := InstallWorkloadIdentityWebhook(ctx, s.ControlPlane, f.Images.WorkloadIdentityWebhook, TenantID, podURL(f.Azure.Entra.URL())+"/"); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	bundle := string(f.Azure.Entra.CACertPEM()) + string(f.Azure.Proxy.CACertPEM())
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SpokeNamespace}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fleetCAConfigMap, Namespace: SpokeNamespace}, Data: map[string]string{"ca.pem": bundle}},
	} {
		if err := client.IgnoreAlreadyExists(s.Client.Create(ctx, obj)); err != nil {
			return err
		}
	}
	return nil
}

// spokeValues writes the spoke chart values lifeboat-hub gives every cluster
// in the fleet (--spoke-values): the image from the node's containerd, the
// fleet's CAs, the blob proxy as an allowed endpoint, and the hub's address
// as pods reach it (the hub kubeconfig OCM writes has the loopback address
// the registration agent uses).
func (f *Fleet) spokeValues() (string, error) {
	values := map[string]any{
		"image":     map[string]any{"pullPolicy": "Never"},
		"extraArgs": []string{"--ca-bundle=" + fleetCADir + "/ca.pem", "--hub-server=" + podURL(f.Hub.URL)},
		// Volume repositories are maintained soon after a test writes them.
		"repositoryMaintenanceInterval": "30s",
		// Azurite's proxy is a private endpoint the spoke's admin allows.
		"allowedBlobEndpoints": []string{podURL(f.Azure.BlobEndpoint())},
		"extraVolumes": []map[string]any{{
			"name": "fleet-ca", "configMap": map[string]any{"name": fleetCAConfigMap},
		}},
		"extraVolumeMounts": []map[string]any{{"name": "fleet-ca", "mountPath": fleetCADir, "readOnly": true}},
	}
	raw, err := yaml.Marshal(values)
	if err != nil {
		return "", err
	}
	path := filepath.Join(f.Hub.Dir, "spoke-values.yaml")
	return path, os.WriteFile(path, raw, 0o600)
}

// WaitSpokePods waits until the spoke's pod, which lifeboat-hub's agent work
// installed, is available and leads (holds the spoke's leader Lease) on each
// of spokes, so that what a test creates next is acted on at once.
func (f *Fleet) WaitSpokePods(ctx context.Context, spokes ...*Spoke) error {
	for _, s := range spokes {
		if err := waitSpokeLeads(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// SpokePod is the running pod of spoke s's lifeboat-spoke.
func SpokePod(ctx context.Context, s *Spoke) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := s.Client.List(ctx, pods, client.InNamespace(SpokeNamespace), client.MatchingLabels{"app.kubernetes.io/name": spokeDeployment}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%s: no running lifeboat-spoke pod", s.Name)
}

// SpokeManagerPid is the host pid of spoke s's lifeboat-spoke (its process, or
// the main process of its pod's container).
func (f *Fleet) SpokeManagerPid(ctx context.Context, s *Spoke) (int, error) {
	if s.Node == nil {
		return s.Manager.Pid(), nil
	}
	pod, err := SpokePod(ctx, s)
	if err != nil {
		return 0, err
	}
	if len(pod.Status.ContainerStatuses) == 0 {
		return 0, fmt.Errorf("pod %s has no container status", pod.Name)
	}
	id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	raw, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", containerdCgroupParent, id, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		return 0, fmt.Errorf("container %s has no process", id)
	}
	return strconv.Atoi(fields[0])
}

// deleteSpokePod deletes spoke s's pod and waits until its container is gone
// from the node; its Deployment makes a new one. With graceful, the pod gets
// its normal termination grace (SIGTERM: the manager stops and hands over its
// lease); without, it is deleted at once, as a node failure or an eviction would.
func deleteSpokePod(ctx context.Context, s *Spoke, graceful bool) error {
	pod, err := SpokePod(ctx, s)
	if err != nil {
		return err
	}
	var opts []client.DeleteOption
	if !graceful {
		opts = append(opts, client.GracePeriodSeconds(0))
	}
	if err := s.Client.Delete(ctx, pod, opts...); err != nil {
		return err
	}
	// Gone from the node, not only from the API.
	for {
		containers, err := s.Node.Containers(ctx)
		if err != nil {
			return err
		}
		running := false
		for _, c := range pod.Status.ContainerStatuses {
			for _, id := range containers {
				running = running || strings.TrimPrefix(c.ContainerID, "containerd://") == id
			}
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// spokeLease is the spoke manager's leader election Lease in SpokeNamespace
// (spoke/main.go).
const spokeLease = "lifeboat-spoke.backup.lifeboat.dev"

// waitSpokeLeads waits until spoke s's Deployment is fully available and its
// running pod holds the leader Lease (controller-runtime's holder identity is
// the pod's hostname, its name, then "_" and a UUID).
func waitSpokeLeads(ctx context.Context, s *Spoke) error {
	if err := waitDeploymentAvailable(ctx, s.ControlPlane, SpokeNamespace, spokeDeployment); err != nil {
		return err
	}
	var last error
	for {
		pod, err := SpokePod(ctx, s)
		last = err
		if err == nil {
			lease := &coordinationv1.Lease{}
			if last = s.Client.Get(ctx, client.ObjectKey{Namespace: SpokeNamespace, Name: spokeLease}, lease); last == nil {
				holder := ptr.Deref(lease.Spec.HolderIdentity, "")
				if strings.HasPrefix(holder, pod.Name+"_") {
					return nil
				}
				last = fmt.Errorf("lease %s is held by %q, not by pod %s", spokeLease, holder, pod.Name)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a leading lifeboat-spoke pod on %s: %w (%v)\n%s", s.Name, ctx.Err(), last, DescribePods(context.Background(), s.ControlPlane, SpokeNamespace))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mustParse(u string) *url.URL {
	parsed, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return parsed
}
