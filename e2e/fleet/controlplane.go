package fleet

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/pki"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// ControlPlane is one Kubernetes control plane of the fleet: etcd, kube-apiserver
// and, where asked, kube-controller-manager, each a real process on loopback.
type ControlPlane struct {
	Name string
	// Dir holds certificates, keys, kubeconfigs, data and logs.
	Dir string
	// URL is the kube-apiserver's https URL; it is also the service-account issuer.
	URL string
	// CA signs the serving certificate and every client certificate.
	CA *pki.CA
	// AdminKubeconfig is a kubeconfig file for a system:masters user.
	AdminKubeconfig string
	// Config is the admin rest config.
	Config *rest.Config
	// Client is an admin controller-runtime client using the fleet scheme.
	Client client.Client

	etcd, apiserver, kcm *proc.Process
	saKey                *rsa.PrivateKey
	// signingDuration is the kube-controller-manager's
	// --cluster-signing-duration; 0 is its default.
	signingDuration time.Duration
}

// Port is the kube-apiserver's port on loopback.
func (cp *ControlPlane) Port() int {
	u, err := url.Parse(cp.URL)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// Issuer is the service-account token issuer of this control plane.
func (cp *ControlPlane) Issuer() string { return cp.URL }

// Processes lists the running processes of this control plane.
func (cp *ControlPlane) Processes() []*proc.Process {
	if cp == nil {
		return nil
	}
	var ps []*proc.Process
	for _, p := range []*proc.Process{cp.kcm, cp.apiserver, cp.etcd} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Etcd is an etcd that several control planes share (OnEtcd), each keeping
// its objects under a key prefix of its own, so that many API servers need one
// etcd's memory and start time, not one each.
type Etcd struct {
	URL string
	cp  *ControlPlane // only its etcd runs
}

// StartEtcd starts an etcd for name under dir and waits until it is healthy.
func StartEtcd(ctx context.Context, name, dir string) (_ *Etcd, err error) {
	e := &Etcd{cp: &ControlPlane{Name: name, Dir: dir}}
	for _, sub := range []string{"etcd", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if e.URL, err = e.cp.startEtcd(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// Process is the etcd process.
func (e *Etcd) Process() *proc.Process { return e.cp.etcd }

// Stop stops etcd; stop the control planes on it first.
func (e *Etcd) Stop() { e.cp.Stop() }

// ControlPlaneOption changes how StartControlPlane starts a control plane.
type ControlPlaneOption func(*controlPlaneOptions)

type controlPlaneOptions struct {
	etcd *Etcd
}

// OnEtcd runs the control plane's API server on the shared etcd e, its
// objects under the key prefix /clusters/<name>/registry, instead of starting
// an etcd of its own. Names must differ between the control planes on e.
func OnEtcd(e *Etcd) ControlPlaneOption {
	return func(o *controlPlaneOptions) { o.etcd = e }
}

// StartControlPlane starts etcd and kube-apiserver (and kube-controller-manager if
// withKCM) for name under dir and waits until the API server is ready. Packages
// that need one real API server for their tests use it directly; Stop ends it.
func StartControlPlane(ctx context.Context, name, dir string, withKCM bool, opts ...ControlPlaneOption) (_ *ControlPlane, err error) {
	var o controlPlaneOptions
	for _, opt := range opts {
		opt(&o)
	}
	cp := &ControlPlane{Name: name, Dir: dir}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	for _, sub := range []string{"pki", "etcd", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := cp.writePKI(); err != nil {
		return nil, err
	}
	etcdURL, etcdPrefix := "", "/registry"
	if o.etcd != nil {
		etcdURL, etcdPrefix = o.etcd.URL, "/clusters/"+name+"/registry"
	} else if etcdURL, err = cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, etcdURL, etcdPrefix); err != nil {
		return nil, err
	}
	if withKCM {
		if err := cp.startControllerManager(ctx); err != nil {
			return nil, err
		}
		if err := cp.createStorageClass(ctx); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) pkiPath(name string) string { return filepath.Join(cp.Dir, "pki", name) }
func (cp *ControlPlane) logDir() string             { return filepath.Join(cp.Dir, "logs") }

func (cp *ControlPlane) writePKI() error {
	ca, err := pki.NewCA(cp.Name + "-ca")
	if err != nil {
		return err
	}
	cp.CA = ca
	if _, err := ca.WriteCA(cp.pkiPath(""), "ca"); err != nil {
		return err
	}
	if _, err := ca.WriteKey(cp.pkiPath(""), "ca"); err != nil {
		return err
	}
	serving, err := ca.Serving("kube-apiserver", "kubernetes", "kubernetes.default", "kubernetes.default.svc", pki.KubernetesServiceIP)
	if err != nil {
		return err
	}
	if _, _, err := serving.Write(cp.pkiPath(""), "apiserver"); err != nil {
		return err
	}
	// The API server's identity towards kubelets (exec, logs).
	kubeletClient, err := ca.Client("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		return err
	}
	if _, _, err := kubeletClient.Write(cp.pkiPath(""), "apiserver-kubelet-client"); err != nil {
		return err
	}
	// Service-account tokens are signed with RSA, as in a real cluster, so that the
	// Entra stand-in verifies RS256 assertions.
	cp.saKey, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&cp.saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cp.pkiPath("sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(cp.saKey)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(cp.pkiPath("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func (cp *ControlPlane) startEtcd(ctx context.Context) (string, error) {
	bin, err := assets.Path("etcd")
	if err != nil {
		return "", err
	}
	clientPort, err := proc.FreePort()
	if err != nil {
		return "", err
	}
	peerPort, err := proc.FreePort()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	cp.etcd, err = proc.Start(cp.Name+"-etcd", cp.logDir(), bin, []string{
		"--name=" + cp.Name,
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + cp.Name + "=" + peerURL,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	})
	if err != nil {
		return "", err
	}
	return clientURL, cp.etcd.WaitFor(ctx, "etcd health", func() error {
		return httpOK(http.DefaultClient, clientURL+"/health")
	})
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, etcdURL, etcdPrefix string) error {
	bin, err := assets.Path("kube-apiserver")
	if err != nil {
		return err
	}
	port, err := proc.FreePort()
	if err != nil {
		return err
	}
	cp.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
	cp.apiserver, err = proc.Start(cp.Name+"-kube-apiserver", cp.logDir(), bin, []string{
		"--etcd-servers=" + etcdURL,
		"--etcd-prefix=" + etcdPrefix,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + cp.pkiPath("apiserver.crt"),
		"--tls-private-key-file=" + cp.pkiPath("apiserver.key"),
		"--client-ca-file=" + cp.pkiPath("ca.crt"),
		"--service-account-issuer=" + cp.URL,
		"--service-account-key-file=" + cp.pkiPath("sa.pub"),
		"--service-account-signing-key-file=" + cp.pkiPath("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC",
		"--kubelet-client-certificate=" + cp.pkiPath("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + cp.pkiPath("apiserver-kubelet-client.key"),
		// Anonymous requests reach only what RBAC grants them: the fleet grants the
		// service-account issuer discovery documents, which Entra fetches.
		"--anonymous-auth=true",
		"--allow-privileged=true",
		"--kubelet-preferred-address-types=InternalIP",
		// Webhooks are called at their Service's endpoints (the API server
		// runs on the host, which has no route to ClusterIPs).
		"--enable-aggregator-routing=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	})
	if err != nil {
		return err
	}
	if err := cp.writeAdminKubeconfig(); err != nil {
		return err
	}
	httpc, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		return err
	}
	if err := cp.apiserver.WaitFor(ctx, "kube-apiserver readiness", func() error {
		return httpOK(httpc, cp.URL+"/readyz")
	}); err != nil {
		return err
	}
	cp.Client, err = client.New(cp.Config, client.Options{Scheme: Scheme})
	return err
}

// writeAdminKubeconfig writes a system:masters kubeconfig and sets Config.
func (cp *ControlPlane) writeAdminKubeconfig() error {
	path, cfg, err := cp.UserKubeconfig("admin", "fleet-admin", "system:masters")
	if err != nil {
		return err
	}
	cp.AdminKubeconfig, cp.Config = path, cfg
	return nil
}

// UserKubeconfig issues a client certificate for user in groups and writes a
// kubeconfig named file (under Dir/kubeconfigs) for it.
func (cp *ControlPlane) UserKubeconfig(file, user string, groups ...string) (string, *rest.Config, error) {
	kp, err := cp.CA.Client(user, groups...)
	if err != nil {
		return "", nil, err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[cp.Name] = &clientcmdapi.Cluster{Server: cp.URL, CertificateAuthorityData: cp.CA.CertPEM()}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	kc.Contexts[cp.Name] = &clientcmdapi.Context{Cluster: cp.Name, AuthInfo: user}
	kc.CurrentContext = cp.Name
	dir := filepath.Join(cp.Dir, "kubeconfigs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, file+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", nil, err
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return "", nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return path, cfg, nil
}

// SetClusterSigningDuration restarts the kube-controller-manager so that the
// certificates it signs for CSRs from then on (on a hub: OCM's agents' and
// add-ons' client certificates) are valid for d, or, when d is 0, for its
// default of a year, never past the CA's own expiry. The
// kube-controller-manager backdates each certificate's NotBefore by 5
// minutes, so a certificate of d < 8 h spans d + 5 min.
func (cp *ControlPlane) SetClusterSigningDuration(ctx context.Context, d time.Duration) error {
	if cp.kcm == nil {
		return fmt.Errorf("%s runs no kube-controller-manager", cp.Name)
	}
	if err := cp.kcm.Stop(10 * time.Second); err != nil {
		return err
	}
	cp.kcm, cp.signingDuration = nil, d
	return cp.startControllerManager(ctx)
}

// defaultSigningDuration is kube-controller-manager's --cluster-signing-duration default.
const defaultSigningDuration = 365 * 24 * time.Hour

func (cp *ControlPlane) startControllerManager(ctx context.Context) (err error) {
	signing := cp.signingDuration
	if signing == 0 {
		signing = defaultSigningDuration
	}
	// The controller-manager's controllers act as its own identity
	// (--use-service-account-credentials=false), which needs every permission.
	cp.kcm, err = cp.startComponent(ctx, "kube-controller-manager", cp.logDir(),
		"system:kube-controller-manager", []string{"system:masters"},
		"--root-ca-file="+cp.pkiPath("ca.crt"),
		"--service-account-private-key-file="+cp.pkiPath("sa.key"),
		"--use-service-account-credentials=false",
		"--controllers=*,-node-ipam-controller,-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller",
		"--concurrent-gc-syncs=5",
		// The quota controller counts a CRD's objects only once discovery
		// shows it (every 30 s); a quota made before then waits for the next
		// full resync (default 5 m) to admit anything.
		"--resource-quota-sync-period=15s",
		// Approved CertificateSigningRequests (OCM's registration agents
		// joining the hub) are signed by the cluster CA, which the API server
		// trusts for client certificates.
		"--cluster-signing-cert-file="+cp.pkiPath("ca.crt"),
		"--cluster-signing-key-file="+cp.pkiPath("ca.key"),
		"--cluster-signing-duration="+signing.String(),
		// Claims get volumes: a directory under /tmp/hostpath_pv on this
		// host, which is every node of the fleet (see createStorageClass).
		"--enable-hostpath-provisioner",
	)
	return err
}

// startComponent runs binary (kube-controller-manager, kube-scheduler) against
// cp as user in groups, with the flags such components share (its kubeconfig
// for API, authentication and authorization, a free secure port on loopback,
// no leader election) and extra, logging to logDir, and waits until it is
// healthy.
func (cp *ControlPlane) startComponent(ctx context.Context, binary, logDir, user string, groups []string, extra ...string) (*proc.Process, error) {
	bin, err := assets.Path(binary)
	if err != nil {
		return nil, err
	}
	kubeconfig, _, err := cp.UserKubeconfig(binary, user, groups...)
	if err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(cp.Name+"-"+binary, logDir, bin, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--leader-elect=false",
		"--v=1",
	}, extra...))
	if err != nil {
		return nil, err
	}
	return p, p.WaitFor(ctx, binary+" health", func() error {
		return httpOK(insecureLoopbackClient, fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
	})
}

// Stop stops every process of the control plane, newest first, and removes
// the directories of the volumes its controller-manager provisioned.
func (cp *ControlPlane) Stop() {
	dirs := cp.provisionedVolumeDirs()
	for _, p := range cp.Processes() {
		_ = p.Stop(10 * time.Second)
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

// insecureLoopbackClient probes the health of the fleet's own components on
// loopback, which serve self-signed certificates.
var insecureLoopbackClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback health probes of our own processes

func httpOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
