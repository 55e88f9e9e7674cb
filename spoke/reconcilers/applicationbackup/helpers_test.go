package applicationbackup_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/archive/archivetest"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationbackup"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

const (
	cluster         = "spoke-1"
	selfServiceKey  = "lifeboat.dev/self-service"
	eventuallyLimit = 30 * time.Second
)

// env is one test's world: an application namespace with a few objects, a
// valid target whose data goes to a DirStore, and a reconciler to run in a
// manager of its own.
type env struct {
	t      *testing.T
	g      *WithT
	ctx    context.Context
	app    string // the application's namespace
	target string
	store  *archive.DirStore
	// storeDir is the store's root directory.
	storeDir string
	gate     *gateStore
	r        *applicationbackup.Reconciler
	stop     func()
}

func newEnv(t *testing.T) *env {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(eventuallyLimit)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ctx := context.Background()
	e := &env{t: t, g: g, ctx: ctx, app: "app-" + rand.String(6), target: "t-" + rand.String(6), storeDir: t.TempDir()}
	e.store = archive.NewDirStore(e.storeDir)
	e.gate = &gateStore{Store: e.store, open: make(chan struct{})}
	close(e.gate.open) // open unless a test closes it
	e.r = &applicationbackup.Reconciler{
		Client: cp.Client, Cluster: cluster, Runs: &runs.Registry{}, StatusInterval: 50 * time.Millisecond,
		Stores: func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.gate, nil },
	}
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: targets.SystemNamespace}},
		{ObjectMeta: metav1.ObjectMeta{Name: e.app, Labels: map[string]string{selfServiceKey: "true"}}},
	} {
		if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"settings", "flags", "theme"} {
		g.Expect(cp.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: name}, Data: map[string]string{"k": name}})).To(Succeed())
	}
	g.Expect(cp.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: "creds"}, StringData: map[string]string{"password": "s3cret"}})).To(Succeed())
	e.makeTarget(e.target, backupv1alpha1.TargetValid)
	return e
}

// makeTarget creates a BackupTarget that lets labeled namespaces use it, with
// the given validation phase.
func (e *env) makeTarget(name string, phase backupv1alpha1.TargetPhase) {
	t := &backupv1alpha1.BackupTarget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: backupv1alpha1.BackupTargetSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboattest", Container: "backups"},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: fleet.TenantID},
			},
			AllowedNamespaces: &metav1.LabelSelector{MatchLabels: map[string]string{selfServiceKey: "true"}},
		},
	}
	e.g.Expect(cp.Client.Create(e.ctx, t)).To(Succeed())
	t.Status.Phase = phase
	t.Status.Reason = "ValidationSucceeded"
	if phase != backupv1alpha1.TargetValid {
		t.Status.Reason, t.Status.Message = backupv1alpha1.ReasonAuthorizationFailed, "the identity lacks Storage Blob Data Contributor"
	}
	e.g.Expect(cp.Client.Status().Update(e.ctx, t)).To(Succeed())
}

// start runs the reconciler in a manager until the test ends or stop is called.
func (e *env) start() {
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 fleet.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.r.Client = mgr.GetClient()
	e.r.Recorder = mgr.GetEventRecorder("lifeboat-spoke")
	e.g.Expect(e.r.SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			e.t.Errorf("manager: %v", err)
		}
	}()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(e.stop)
}

// backup creates an ApplicationBackup of the application's namespace.
func (e *env) backup(namespace, name string, mutate ...func(*backupv1alpha1.ApplicationBackup)) *backupv1alpha1.ApplicationBackup {
	ab := &backupv1alpha1.ApplicationBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: backupv1alpha1.ApplicationBackupSpec{
			Target:    backupv1alpha1.ObjectName(e.target),
			Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(e.app)}},
		},
	}
	for _, m := range mutate {
		m(ab)
	}
	e.g.Expect(cp.Client.Create(e.ctx, ab)).To(Succeed())
	return ab
}

// get reads ab as the API server has it now.
func (e *env) get(ab *backupv1alpha1.ApplicationBackup) func() *backupv1alpha1.ApplicationBackup {
	return func() *backupv1alpha1.ApplicationBackup {
		got := &backupv1alpha1.ApplicationBackup{}
		if err := cp.Client.Get(e.ctx, client.ObjectKeyFromObject(ab), got); err != nil {
			return nil
		}
		return got
	}
}

func (e *env) phase(ab *backupv1alpha1.ApplicationBackup) func() backupv1alpha1.ApplicationBackupPhase {
	return func() backupv1alpha1.ApplicationBackupPhase {
		if got := e.get(ab)(); got != nil {
			return got.Status.Phase
		}
		return ""
	}
}

// files lists what the store holds for backup id.
func (e *env) files(id string) func() []string {
	return func() []string {
		dir, err := archive.Path("", cluster, id)
		e.g.Expect(err).NotTo(HaveOccurred())
		names, err := e.store.List(e.ctx, dir+"/")
		e.g.Expect(err).NotTo(HaveOccurred())
		return names
	}
}

// gateStore holds every Put of backup.json until open is closed (or the
// upload is cancelled): a backup then waits, InProgress, with its three
// data files stored.
type gateStore struct {
	archive.Store
	open    chan struct{}
	waiting atomic.Int32
}

func (s *gateStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	if strings.HasSuffix(name, "/"+archive.ManifestFile) {
		s.waiting.Add(1)
		defer s.waiting.Add(-1)
		select {
		case <-s.open:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.Put(ctx, name, r)
}

// hold makes backups wait before they commit; it returns the function that
// lets them go on.
func (e *env) hold() func() {
	e.gate.open = make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(e.gate.open) }) }
}

// manifestSHA256 is the sha256 of backup id's backup.json in the store.
func (e *env) manifestSHA256(id string) string {
	dir, err := archive.Path("", cluster, id)
	e.g.Expect(err).NotTo(HaveOccurred())
	sum, err := archivetest.ManifestSHA256(e.ctx, e.store, dir)
	e.g.Expect(err).NotTo(HaveOccurred())
	return sum
}
