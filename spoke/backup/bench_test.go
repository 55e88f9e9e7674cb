package backup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/backup"
)

const benchNamespace = "bench"

// benchMix is the 10,000 objects of the benchmark, by resource.
var benchMix = []struct {
	gvr schema.GroupVersionResource
	n   int
}{
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, 4000},
	{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, 3000},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, 2000},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, 1000},
}

var (
	benchOnce sync.Once
	benchErr  error
)

// BenchmarkBackup10k backs up a namespace of 10,000 objects (ConfigMaps,
// Secrets, Services, Deployments) from the real API server into a DirStore,
// and in the same run lists the same objects the plain way: page by page
// (limit 500) with the dynamic client, each object serialized to io.Discard.
// A third measurement reads the same pages as raw bytes into io.Discard: the
// API server's own ceiling. All three use the same client settings (QPS 200,
// Burst 400, no compression).
//
//	go test -run XXX -bench Backup10k -benchtime 3x ./spoke/backup/
func BenchmarkBackup10k(b *testing.B) {
	benchOnce.Do(func() { benchErr = makeBenchObjects(context.Background()) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	ctx := context.Background()
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst, cfg.DisableCompression = 200, 400, true

	var backupTime, listTime, rawTime time.Duration
	var backupItems, listItems, rawItems int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		backupItems += benchBackup(b, ctx, cfg, i)
		backupTime += time.Since(start)

		start = time.Now()
		listItems += benchList(b, ctx, cfg)
		listTime += time.Since(start)

		start = time.Now()
		rawItems += benchRaw(b, ctx, cfg)
		rawTime += time.Since(start)
	}
	b.StopTimer()
	backupRate := float64(backupItems) / backupTime.Seconds()
	listRate := float64(listItems) / listTime.Seconds()
	rawRate := float64(rawItems) / rawTime.Seconds()
	b.ReportMetric(float64(backupItems)/float64(b.N), "items/backup")
	b.ReportMetric(backupRate, "backup-items/s")
	b.ReportMetric(listRate, "baseline-items/s")
	b.ReportMetric(backupRate/listRate, "ratio")
	b.ReportMetric(rawRate, "rawbytes-items/s")
	b.ReportMetric(backupRate/rawRate, "ratio-rawbytes")
}

// benchBackup backs up the namespace and returns the number of items.
func benchBackup(b *testing.B, ctx context.Context, cfg *rest.Config, i int) int64 {
	store := archive.NewDirStore(b.TempDir())
	dir, err := archive.Path("", "spoke-1", "bench-"+strconv.Itoa(i))
	if err != nil {
		b.Fatal(err)
	}
	w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: archive.Owner{Namespace: benchNamespace}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := backup.Run(ctx, backup.Options{
		Config: cfg, Writer: w,
		Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{benchNamespace}},
	})
	if err != nil {
		b.Fatal(err)
	}
	m, err := w.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if p.Errors != 0 || m.Counts.Items < 10000 {
		b.Fatalf("backup: %+v, %d items", p, m.Counts.Items)
	}
	return m.Counts.Items
}

// benchList is the baseline: list the benchmark's objects page by page with
// the dynamic client and serialize each to io.Discard.
func benchList(b *testing.B, ctx context.Context, cfg *rest.Config) int64 {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	enc := json.NewEncoder(io.Discard)
	var n int64
	for _, m := range benchMix {
		opts := metav1.ListOptions{Limit: 500}
		for {
			l, err := dyn.Resource(m.gvr).Namespace(benchNamespace).List(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			for i := range l.Items {
				if err := enc.Encode(l.Items[i].Object); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if opts.Continue = l.GetContinue(); opts.Continue == "" {
				break
			}
		}
	}
	if n < 10000 {
		b.Fatalf("baseline listed %d objects", n)
	}
	return n
}

// benchRaw reads the same pages as bytes into io.Discard, decoding only the
// continue token; it counts the objects it knows are there.
func benchRaw(b *testing.B, ctx context.Context, cfg *rest.Config) int64 {
	c := rest.CopyConfig(cfg)
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, m := range benchMix {
		base := "/api/v1"
		if m.gvr.Group != "" {
			base = "/apis/" + m.gvr.Group + "/" + m.gvr.Version
		}
		cont := ""
		for {
			req := rc.Get().AbsPath(base, "namespaces", benchNamespace, m.gvr.Resource).Param("limit", "500")
			if cont != "" {
				req = req.Param("continue", cont)
			}
			body, err := req.Do(ctx).Raw()
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Discard.Write(body)
			var meta struct {
				Metadata struct {
					Continue string `json:"continue"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(body, &meta); err != nil {
				b.Fatal(err)
			}
			if cont = meta.Metadata.Continue; cont == "" {
				break
			}
		}
		n += int64(m.n)
	}
	return n
}

// makeBenchObjects creates the benchmark's namespace and objects with 16
// parallel writers.
func makeBenchObjects(ctx context.Context) error {
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: cp.Client.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		return err
	}
	objects := make(chan client.Object)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for o := range objects {
				if err := c.Create(ctx, o); err != nil {
					select {
					case errs <- fmt.Errorf("creating %T %s: %w", o, o.GetName(), err):
					default:
					}
				}
			}
		})
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "lifeboat-bench", "app.kubernetes.io/component": "load"}
	for _, m := range benchMix {
		for i := range m.n {
			meta := metav1.ObjectMeta{Namespace: benchNamespace, Name: fmt.Sprintf("%s-%05d", m.gvr.Resource[:len(m.gvr.Resource)-1], i), Labels: labels}
			var o client.Object
			switch m.gvr.Resource {
			case "configmaps":
				o = &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{
					"app.properties": "color=blue\nsize=large\nreplicas=3\nendpoint=https://api.example.com/v1\n",
					"index":          strconv.Itoa(i),
				}}
			case "secrets":
				o = &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{
					"username": []byte("user-" + strconv.Itoa(i)), "password": []byte("correct-horse-battery-staple-" + strconv.Itoa(i)),
				}}
			case "services":
				// Headless and without a selector: no cluster IP to allocate, no endpoints.
				o = &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
					Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}}
			case "deployments":
				// Paused with no replicas: the controller makes no ReplicaSet.
				sel := map[string]string{"app": meta.Name}
				o = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](0), Paused: true, Selector: &metav1.LabelSelector{MatchLabels: sel},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "main", Image: "registry.example.com/app:1.0", Args: []string{"--port=8080"},
							Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
					}},
				}}
			}
			select {
			case objects <- o:
			case err := <-errs:
				close(objects)
				wg.Wait()
				return err
			}
		}
	}
	close(objects)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
