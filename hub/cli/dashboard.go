package cli

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

//go:embed dashboard
var dashboardFiles embed.FS

var dashboardPage = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"cellClass": func(cell string) string {
		switch {
		case cell == "Valid":
			return "ok"
		case cell == "Pending":
			return "pending"
		case cell == "-":
			return "none"
		}
		return "bad"
	},
}).ParseFS(dashboardFiles, "dashboard/index.html"))

// maxFailures is how many recent failures the dashboard shows.
const maxFailures = 25

func dashboardCommand() *command {
	address := "127.0.0.1:8484"
	return &command{
		use:   "dashboard [--address HOST:PORT]",
		short: "Serve a local, read-only web page of the fleet, with your own kubeconfig and RBAC",
		example: "lifeboat dashboard -A            # then open http://127.0.0.1:8484/\n" +
			"  lifeboat dashboard -n team-a --address 127.0.0.1:9000",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&address, "address", address, "where to listen: a loopback address (127.0.0.1, ::1 or localhost) and a port (0: any free one)")
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return usagef("--address %q: %v", address, err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return usagef("--address %q: the dashboard listens only on a loopback address: it shows what your credentials may read", address)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", address)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: &dashboard{c: c, namespace: s.listNamespace(), origin: ln.Addr().String()},
				ReadHeaderTimeout: 10 * time.Second}
			where := "namespace " + s.listNamespace()
			if s.listNamespace() == "" {
				where = "all namespaces"
			}
			fmt.Fprintf(s.out(), "Lifeboat dashboard of %s at http://%s/ (read-only; Ctrl-C stops it)\n", where, ln.Addr())
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
}

// dashboard serves the page: every request reads the hub afresh with the
// user's client, so it shows exactly what their RBAC lets them read.
type dashboard struct {
	c         client.Client
	namespace string
	// origin is the address listened on: requests for any other Host are
	// refused, so a web page cannot reach the dashboard through DNS rebinding.
	origin string
}

func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if !d.sameOrigin(r.Host) {
		http.Error(w, "this dashboard answers only at http://"+d.origin+"/", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/":
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		view := d.load(ctx)
		h.Set("Content-Type", "text/html; charset=utf-8")
		if err := dashboardPage.Execute(w, view); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	case "/style.css":
		h.Set("Content-Type", "text/css; charset=utf-8")
		http.ServeFileFS(w, r, dashboardFiles, "dashboard/style.css")
	default:
		http.NotFound(w, r)
	}
}

// sameOrigin is true when host is the address listened on, by IP or as localhost.
func (d *dashboard) sameOrigin(host string) bool {
	if host == d.origin {
		return true
	}
	_, port, _ := net.SplitHostPort(d.origin)
	return host == net.JoinHostPort("localhost", port)
}

// dashboardView is what the page shows.
type dashboardView struct {
	Scope     string
	Generated string
	// Notes are what could not be read (e.g. not allowed by RBAC).
	Notes     []string
	Clusters  []clusterView
	Locations []string
	Running   []runView
	Failures  []runView
	// NotProtected are the namespaces the clusters' reports name as AtRisk
	// or Unprotected.
	NotProtected []namespaceView
}

type clusterView struct {
	Name, Phase, Shoot, AddOn, Since string
	// Cells are the matrix row: one per location.
	Cells []string
	// Protection is the cluster's protection report, nil before the first.
	Protection *fleetv1alpha1.ProtectionReport
	// Inventory is the age of the namespace inventory the report is from.
	Inventory string
}

// namespaceView is a namespace that is not Protected.
type namespaceView struct {
	Cluster, Namespace, Verdict, LastSuccess, Backup, RPO, Schedule string
}

type runView struct {
	Kind, Namespace, Name, Cluster, Phase, Stage, Items, When, Reason, Message string
	Done, Total                                                                int64
}

func (d *dashboard) load(ctx context.Context) dashboardView {
	v := dashboardView{Scope: "namespace " + d.namespace, Generated: time.Now().UTC().Format(time.RFC3339)}
	if d.namespace == "" {
		v.Scope = "all namespaces"
	}
	if m, err := loadMatrix(ctx, d.c, d.namespace); err != nil {
		v.Notes = append(v.Notes, "Clusters: "+err.Error())
	} else {
		v.Locations = m.locations
		for _, cl := range m.clusters {
			cv := clusterView{Name: cl.Name, Phase: string(cl.Status.Phase)}
			cv.AddOn, cv.Since = addOnState(&cl)
			if cl.Spec.Shoot != nil {
				cv.Shoot = cl.Spec.Shoot.Project + "/" + cl.Spec.Shoot.Name
			}
			for _, l := range m.locations {
				cv.Cells = append(cv.Cells, m.cell(cl.Name, l))
			}
			if p := cl.Status.Protection; p != nil {
				cv.Protection, cv.Inventory = p, age(p.InventoryTime)
				for _, n := range p.NotProtected {
					nv := namespaceView{Cluster: cl.Name, Namespace: n.Namespace, Verdict: string(n.Verdict),
						LastSuccess: age(n.LastSuccessfulTime), Backup: n.LastSuccessfulBackup, Schedule: n.Schedule}
					if n.RPO != nil {
						nv.RPO = duration.HumanDuration(n.RPO.Duration)
					}
					v.NotProtected = append(v.NotProtected, nv)
				}
			}
			v.Clusters = append(v.Clusters, cv)
		}
	}
	backups := &fleetv1alpha1.BackupList{}
	if err := d.c.List(ctx, backups, client.InNamespace(d.namespace)); err != nil {
		v.Notes = append(v.Notes, "Backups: "+apiError(err, "backups").Error())
	}
	for i := range backups.Items {
		b := &backups.Items[i]
		run := newRunView("Backup", b.Namespace, b.Name, string(b.Spec.Cluster), string(b.Status.Phase), b.Status.Progress,
			b.Status.StartTime, b.Status.CompletionTime, b.Status.Conditions)
		run.Stage = string(b.Status.Stage)
		switch b.Status.Phase {
		case fleetv1alpha1.BackupPending, fleetv1alpha1.BackupInProgress, "":
			v.Running = append(v.Running, run)
		case fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.BackupDeletePending:
			v.Failures = append(v.Failures, run)
		}
	}
	restores := &fleetv1alpha1.RestoreList{}
	if err := d.c.List(ctx, restores, client.InNamespace(d.namespace)); err != nil {
		v.Notes = append(v.Notes, "Restores: "+apiError(err, "restores").Error())
	}
	for i := range restores.Items {
		r := &restores.Items[i]
		run := newRunView("Restore", r.Namespace, r.Name, restoreCluster(r, nil), string(r.Status.Phase), r.Status.Progress,
			r.Status.StartTime, r.Status.CompletionTime, r.Status.Conditions)
		switch r.Status.Phase {
		case backupv1alpha1.RestorePending, backupv1alpha1.RestoreInProgress, "":
			v.Running = append(v.Running, run)
		case backupv1alpha1.RestoreFailed, backupv1alpha1.RestorePartialSuccess:
			v.Failures = append(v.Failures, run)
		}
	}
	sort.SliceStable(v.Running, func(i, j int) bool {
		return v.Running[i].Namespace+v.Running[i].Name < v.Running[j].Namespace+v.Running[j].Name
	})
	// Newest failures first (When sorts as RFC 3339).
	sort.SliceStable(v.Failures, func(i, j int) bool { return v.Failures[i].When > v.Failures[j].When })
	if len(v.Failures) > maxFailures {
		v.Failures = v.Failures[:maxFailures]
	}
	return v
}

// newRunView sums up a backup or restore; Reason and Message come from the
// first condition that is not True (Ready first).
func newRunView(kind, ns, name, cluster, phase string, p *backupv1alpha1.Progress, start, end *metav1.Time, conds []metav1.Condition) runView {
	run := runView{Kind: kind, Namespace: ns, Name: name, Cluster: cluster, Phase: phase}
	if p != nil {
		run.Done, run.Total = p.ItemsDone, p.ItemsTotal
		run.Items, _ = progress(p)
	}
	switch {
	case end != nil:
		run.When = end.UTC().Format(time.RFC3339)
	case start != nil:
		run.When = start.UTC().Format(time.RFC3339)
	}
	if c := condition(conds, fleetv1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
		run.Reason, run.Message = c.Reason, c.Message
	} else {
		for _, c := range conds {
			if c.Status != metav1.ConditionTrue && !strings.HasPrefix(c.Type, "Expired") {
				run.Reason, run.Message = c.Reason, c.Message
				break
			}
		}
	}
	return run
}
