package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/spf13/pflag"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// csv splits a comma-separated flag value, dropping empty entries.
func csv(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// namespaceNames checks names given to a flag.
func namespaceNames(flagName, value string) ([]backupv1alpha1.NamespaceName, error) {
	var out []backupv1alpha1.NamespaceName
	for _, n := range csv(value) {
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, usagef("--%s: %q is not a namespace name: %s", flagName, n, strings.Join(errs, "; "))
		}
		out = append(out, backupv1alpha1.NamespaceName(n))
	}
	return out, nil
}

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (wf *waitFlags) register(fs *pflag.FlagSet, what string) {
	fs.BoolVar(&wf.wait, "wait", false, "wait until the "+what+" ends, showing its progress")
	fs.DurationVar(&wf.timeout, "timeout", 30*time.Minute, "how long --wait waits")
}

// waitFor polls obj until done says it has ended; report is called when what
// it returns changes.
func (s *session) waitFor(ctx context.Context, wf waitFlags, obj client.Object, what string, state func() (line string, done bool)) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	last := ""
	err = wait.PollUntilContextTimeout(ctx, s.pollInterval(), wf.timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				return false, fmt.Errorf("%s was deleted: %w", what, errGone)
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
				return false, apiError(err, what)
			}
			// Anything else (a timeout, the hub restarting) may pass: poll on
			// until --timeout.
			if line := fmt.Sprintf("cannot read %s: %v", what, err); line != last && ctx.Err() == nil {
				fmt.Fprintf(s.app.Err, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
				last = line
			}
			return false, nil
		}
		line, done := state()
		if line != last {
			fmt.Fprintf(s.out(), "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
		return done, nil
	})
	if wait.Interrupted(err) && ctx.Err() != nil {
		return fmt.Errorf("stopped waiting (%v); %s goes on", ctx.Err(), what)
	}
	if wait.Interrupted(err) {
		return &exitError{code: ExitTimeout, msg: fmt.Sprintf("gave up waiting for %s after %s; it goes on: check it with '%s %s'", what, wf.timeout, programName(), s.followUp(obj))}
	}
	return err
}

// followUp is the command that shows obj again.
func (s *session) followUp(obj client.Object) string {
	switch obj.(type) {
	case *fleetv1alpha1.Backup:
		return fmt.Sprintf("describe backup %s -n %s", obj.GetName(), obj.GetNamespace())
	case *fleetv1alpha1.Restore:
		return fmt.Sprintf("restores -n %s", obj.GetNamespace())
	}
	return fmt.Sprintf("locations -n %s", obj.GetNamespace())
}

// created reports a created object, kubectl style, or prints it with -o.
func (s *session) created(obj client.Object, resource string) error {
	if s.structured() {
		return s.printObject(obj)
	}
	fmt.Fprintf(s.out(), "%s.fleet.lifeboat.dev/%s created\n", resource, obj.GetName())
	return nil
}

func backupCreateCommand() *command {
	var cluster, location, include, exclude, volumes string
	var ttl time.Duration
	var wf waitFlags
	return &command{
		use:     "backup create NAME --cluster C --location L [--include-namespaces a,b] [--volumes Data|Skip] [--wait]",
		short:   "Back up a cluster to a location (creates a hub Backup)",
		example: "lifeboat backup create shop-1 -n team-a --cluster spoke-1 --location azure-weu --include-namespaces shop --wait",
		args:    1,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&cluster, "cluster", "", "the cluster to back up (required)")
			fs.StringVar(&location, "location", "", "the BackupLocation, in the namespace, to back up to (required)")
			fs.StringVar(&include, "include-namespaces", "", "namespaces to back up, comma-separated (default: all)")
			fs.StringVar(&exclude, "exclude-namespaces", "", "namespaces to leave out, comma-separated")
			fs.DurationVar(&ttl, "ttl", 0, "how long to keep the backup, e.g. 720h (default: until deleted)")
			fs.StringVar(&volumes, "volumes", string(backupv1alpha1.VolumesData), "Data backs up the files of bound PersistentVolumeClaims, Skip leaves them out (the backup is then PartialSuccess)")
			wf.register(fs, "backup")
		},
		run: func(ctx context.Context, s *session, args []string) error {
			if cluster == "" || location == "" {
				return usagef("backup create needs --cluster and --location")
			}
			policy := backupv1alpha1.VolumePolicy(volumes)
			if policy != backupv1alpha1.VolumesData && policy != backupv1alpha1.VolumesSkip {
				return usagef("--volumes must be Data or Skip, not %q", volumes)
			}
			inc, err := namespaceNames("include-namespaces", include)
			if err != nil {
				return err
			}
			exc, err := namespaceNames("exclude-namespaces", exclude)
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.namespace()
			if err := checkExists(ctx, c, &fleetv1alpha1.BackupCluster{}, "", cluster, "backup cluster"); err != nil {
				return err
			}
			if err := checkExists(ctx, c, &fleetv1alpha1.BackupLocation{}, ns, location, "backup location"); err != nil {
				return err
			}
			b := &fleetv1alpha1.Backup{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]},
				Spec: fleetv1alpha1.BackupSpec{
					Cluster:        backupv1alpha1.ClusterName(cluster),
					BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(location), Volumes: policy},
				},
			}
			if len(inc) > 0 || len(exc) > 0 {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: inc, ExcludedNamespaces: exc}
			}
			if ttl > 0 {
				b.Spec.TTL = &metav1.Duration{Duration: ttl}
			}
			if err := c.Create(ctx, b); err != nil {
				return apiError(err, objectName("backup", ns, b.Name))
			}
			if err := s.created(b, "backup"); err != nil || !wf.wait {
				return err
			}
			return s.waitBackup(ctx, wf, b)
		},
	}
}

// checkExists gives a clear error before creating something that names a
// missing object; it says nothing if the user may not read it.
func checkExists(ctx context.Context, c client.Client, obj client.Object, ns, name, kind string) error {
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err == nil || apierrors.IsForbidden(err) {
		return nil
	}
	return apiError(err, objectName(kind, ns, name))
}

func (s *session) waitBackup(ctx context.Context, wf waitFlags, b *fleetv1alpha1.Backup) error {
	err := s.waitFor(ctx, wf, b, objectName("backup", b.Namespace, b.Name), func() (string, bool) {
		items, bytes := progress(b.Status.Progress)
		line := fmt.Sprintf("backup %s: %s", b.Name, phaseOr(string(b.Status.Phase)))
		if b.Status.Stage != "" {
			line += ", stage " + string(b.Status.Stage)
		}
		if items != "" {
			line += fmt.Sprintf(", %s items, %s", items, bytes)
		}
		if r := condition(b.Status.Conditions, fleetv1alpha1.ConditionReady); r != nil && r.Status != metav1.ConditionTrue && r.Message != "" {
			line += fmt.Sprintf(" (%s: %s)", r.Reason, oneLine(r.Message))
		}
		switch b.Status.Phase {
		case fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupAborted:
			return line, true
		}
		return line, false
	})
	if err != nil {
		return err
	}
	switch b.Status.Phase {
	case fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupAborted:
		return &exitError{code: ExitUnsuccessful, msg: fmt.Sprintf("backup %s ended %s: see '%s describe backup %s -n %s'", b.Name, b.Status.Phase, programName(), b.Name, b.Namespace)}
	case fleetv1alpha1.BackupPartialSuccess:
		s.note("Warning: backup %s ended PartialSuccess: %d items could not be backed up.", b.Name, b.Status.Errors)
	}
	return nil
}

func phaseOr(p string) string {
	if p == "" {
		return "Pending"
	}
	return p
}

func backupDeleteCommand() *command {
	var force bool
	var wf waitFlags
	return &command{
		use:   "backup delete NAME [--force]",
		short: "Delete a backup and its data; --force removes the hub record when no cluster can reach the location",
		example: "lifeboat backup delete shop-1 -n team-a\n  lifeboat backup delete shop-1 -n team-a --force   # stuck in DeletePending: " +
			"no cluster can reach the location",
		args: 1,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&force, "force", false, "set "+fleetv1alpha1.ForceDeleteAnnotation+"=true: remove the hub record even if no cluster can delete the data now; "+
				"the location keeps a tombstone and the data is purged once a cluster can reach it")
			wf.register(fs, "deletion")
		},
		run: func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			ns, name := s.namespace(), args[0]
			what := objectName("backup", ns, name)
			b := &fleetv1alpha1.Backup{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
				return apiError(err, what)
			}
			if force {
				if b.Status.Phase != fleetv1alpha1.BackupDeletePending {
					s.note("Note: backup %s is %s, not DeletePending: --force only matters when no cluster can reach the location; if one can, the data is deleted as usual.", name, phaseOr(string(b.Status.Phase)))
				}
				patch := client.MergeFrom(b.DeepCopy())
				if b.Annotations == nil {
					b.Annotations = map[string]string{}
				}
				b.Annotations[fleetv1alpha1.ForceDeleteAnnotation] = "true"
				if err := c.Patch(ctx, b, patch); err != nil {
					return apiError(err, what)
				}
				fmt.Fprintf(s.out(), "backup.fleet.lifeboat.dev/%s annotated %s=true: the hub record is removed without waiting for a cluster; "+
					"the location keeps a tombstone, and the data is deleted once a cluster can reach the location again\n", name, fleetv1alpha1.ForceDeleteAnnotation)
			}
			if b.DeletionTimestamp == nil {
				if err := c.Delete(ctx, b); err != nil {
					return apiError(err, what)
				}
				fmt.Fprintf(s.out(), "backup.fleet.lifeboat.dev/%s deleted: a cluster with a Valid connection to location %s deletes its data, then the hub removes the Backup\n", name, b.Spec.Location)
			} else {
				fmt.Fprintf(s.out(), "backup.fleet.lifeboat.dev/%s was already being deleted\n", name)
			}
			if wf.wait {
				err := s.waitFor(ctx, wf, b, what, func() (string, bool) { return deletionState(b), false })
				if errors.Is(err, errGone) {
					fmt.Fprintf(s.out(), "backup.fleet.lifeboat.dev/%s is gone\n", name)
					return nil
				}
				return err
			}
			// Give the hub a moment to act, then show where the deletion stands:
			// gone, or what the Deleting condition says (a new one, with --force).
			before := ""
			if d := condition(b.Status.Conditions, fleetv1alpha1.ConditionDeleting); d != nil {
				before = d.Reason
			}
			gone := false
			_ = wait.PollUntilContextTimeout(ctx, s.pollInterval(), s.app.deleteSettle(), true, func(ctx context.Context) (bool, error) {
				err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, b)
				if apierrors.IsNotFound(err) {
					gone = true
					return true, nil
				}
				if err != nil {
					return false, nil
				}
				d := condition(b.Status.Conditions, fleetv1alpha1.ConditionDeleting)
				return d != nil && (!force || d.Reason != before), nil
			})
			if gone {
				fmt.Fprintf(s.out(), "backup.fleet.lifeboat.dev/%s is gone\n", name)
				return nil
			}
			fmt.Fprintln(s.out(), deletionState(b))
			if force {
				fmt.Fprintf(s.out(), "The hub has not removed the record yet; follow it with: %s describe backup %s -n %s\n", programName(), name, ns)
			}
			if b.Status.Phase == fleetv1alpha1.BackupDeletePending && !force {
				fmt.Fprintf(s.out(), "No cluster can reach the location now, so the Backup waits. To remove the hub record anyway: %s backup delete %s -n %s --force\n", programName(), name, ns)
			}
			return nil
		},
	}
}

// errGone ends waiting for a deletion: the object is gone.
var errGone = errors.New("gone")

// deletionState says where a Backup's deletion stands: phase and Deleting condition.
func deletionState(b *fleetv1alpha1.Backup) string {
	line := fmt.Sprintf("backup %s: phase %s", b.Name, phaseOr(string(b.Status.Phase)))
	if d := condition(b.Status.Conditions, fleetv1alpha1.ConditionDeleting); d != nil {
		line += fmt.Sprintf(", Deleting=%s %s", d.Status, d.Reason)
		if d.Message != "" {
			line += ": " + oneLine(d.Message)
		}
	}
	return line
}

func restoreCreateCommand() *command {
	var from, cluster, mappingFlag, policy, include string
	var wf waitFlags
	return &command{
		use:     "restore create NAME --from-backup B [--cluster C] [--namespace-mapping a:b,...] [--existing-resource-policy Skip|Update] [--wait]",
		short:   "Restore a backup on its cluster or another one (creates a hub Restore)",
		example: "lifeboat restore create shop-to-spoke-2 -n team-a --from-backup shop-1 --cluster spoke-2 --namespace-mapping shop:shop-copy --wait",
		args:    1,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&from, "from-backup", "", "the Backup, in the namespace, to restore (required)")
			fs.StringVar(&cluster, "cluster", "", "the cluster to restore to (default: the backup's cluster)")
			fs.StringVar(&mappingFlag, "namespace-mapping", "", "restore namespaces under other names: old:new,...")
			fs.StringVar(&policy, "existing-resource-policy", "", "what to do with resources that exist: Skip (default) or Update")
			fs.StringVar(&include, "include-namespaces", "", "namespaces of the backup to restore, comma-separated (default: all)")
			wf.register(fs, "restore")
		},
		run: func(ctx context.Context, s *session, args []string) error {
			if from == "" {
				return usagef("restore create needs --from-backup")
			}
			spec := fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(from), Cluster: backupv1alpha1.ClusterName(cluster)}
			switch strings.ToLower(policy) {
			case "":
			case "skip":
				spec.ExistingResourcePolicy = backupv1alpha1.ExistingResourceSkip
			case "update":
				spec.ExistingResourcePolicy = backupv1alpha1.ExistingResourceUpdate
			default:
				return usagef("--existing-resource-policy must be Skip or Update, not %q", policy)
			}
			m, err := parseMapping(mappingFlag)
			if err != nil {
				return err
			}
			spec.NamespaceMapping = m
			inc, err := namespaceNames("include-namespaces", include)
			if err != nil {
				return err
			}
			if len(inc) > 0 {
				spec.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: inc}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.namespace()
			b := &fleetv1alpha1.Backup{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: from}, b); err != nil {
				if !apierrors.IsForbidden(err) {
					return apiError(err, objectName("backup", ns, from))
				}
			} else if !b.Status.Phase.Restorable() {
				return fmt.Errorf("backup %q is %s: only a backup that ended Success or PartialSuccess can be restored", from, phaseOr(string(b.Status.Phase)))
			}
			if cluster != "" {
				if err := checkExists(ctx, c, &fleetv1alpha1.BackupCluster{}, "", cluster, "backup cluster"); err != nil {
					return err
				}
			}
			r := &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]}, Spec: spec}
			if err := c.Create(ctx, r); err != nil {
				return apiError(err, objectName("restore", ns, r.Name))
			}
			if err := s.created(r, "restore"); err != nil || !wf.wait {
				return err
			}
			err = s.waitFor(ctx, wf, r, objectName("restore", ns, r.Name), func() (string, bool) {
				items, _ := progress(r.Status.Progress)
				line := fmt.Sprintf("restore %s: %s", r.Name, phaseOr(string(r.Status.Phase)))
				if r.Status.Cluster != "" {
					line += " on " + string(r.Status.Cluster)
				}
				if items != "" {
					line += ", " + items + " items"
				}
				if rd := condition(r.Status.Conditions, fleetv1alpha1.ConditionReady); rd != nil && rd.Status != metav1.ConditionTrue && rd.Message != "" {
					line += fmt.Sprintf(" (%s: %s)", rd.Reason, oneLine(rd.Message))
				}
				switch r.Status.Phase {
				case backupv1alpha1.RestoreSuccess, backupv1alpha1.RestorePartialSuccess, backupv1alpha1.RestoreFailed:
					return line, true
				}
				return line, false
			})
			if err != nil {
				return err
			}
			if r.Status.Phase == backupv1alpha1.RestoreFailed {
				return &exitError{code: ExitUnsuccessful, msg: fmt.Sprintf("restore %s ended Failed", r.Name)}
			}
			if r.Status.Phase == backupv1alpha1.RestorePartialSuccess {
				s.note("Warning: restore %s ended PartialSuccess with %d errors: its log names what was not restored.", r.Name, r.Status.Errors)
			}
			return nil
		},
	}
}

// parseMapping reads old:new,old2:new2.
func parseMapping(v string) (backupv1alpha1.NamespaceMapping, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	m := backupv1alpha1.NamespaceMapping{}
	for _, pair := range csv(v) {
		from, to, ok := strings.Cut(pair, ":")
		if !ok || from == "" || to == "" {
			return nil, usagef("--namespace-mapping: %q is not old:new", pair)
		}
		for _, n := range []string{from, to} {
			if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
				return nil, usagef("--namespace-mapping: %q is not a namespace name: %s", n, strings.Join(errs, "; "))
			}
		}
		if _, dup := m[from]; dup {
			return nil, usagef("--namespace-mapping: %q is mapped twice", from)
		}
		m[from] = backupv1alpha1.NamespaceName(to)
	}
	return m, nil
}

func syncCommand() *command {
	var location, cluster string
	var wf waitFlags
	return &command{
		use:     "sync --location L [--cluster C] [--wait]",
		short:   "Import what a location's container holds (creates a hub BackupSync)",
		example: "lifeboat sync -n team-a --location azure-weu --wait",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&location, "location", "", "the BackupLocation, in the namespace, to import (required)")
			fs.StringVar(&cluster, "cluster", "", "the cluster that lists the container (default: any with a Valid connection)")
			wf.register(fs, "sync")
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			if location == "" {
				return usagef("sync needs --location")
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.namespace()
			if err := checkExists(ctx, c, &fleetv1alpha1.BackupLocation{}, ns, location, "backup location"); err != nil {
				return err
			}
			if cluster != "" {
				if err := checkExists(ctx, c, &fleetv1alpha1.BackupCluster{}, "", cluster, "backup cluster"); err != nil {
					return err
				}
			}
			prefix := location
			if len(prefix) > 200 {
				prefix = prefix[:200]
			}
			bs := &fleetv1alpha1.BackupSync{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: prefix + "-"},
				Spec:       fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(location), Cluster: backupv1alpha1.ClusterName(cluster)},
			}
			if err := c.Create(ctx, bs); err != nil {
				return apiError(err, "a sync of "+objectName("backup location", ns, location))
			}
			if err := s.created(bs, "backupsync"); err != nil || !wf.wait {
				return err
			}
			err = s.waitFor(ctx, wf, bs, objectName("backup sync", ns, bs.Name), func() (string, bool) {
				line := fmt.Sprintf("sync %s: %s", bs.Name, phaseOr(string(bs.Status.Phase)))
				if bs.Status.Cluster != "" {
					line += " by " + string(bs.Status.Cluster)
				}
				line += fmt.Sprintf(", found %d, imported %d, missing %d, rejected %d", bs.Status.Found, bs.Status.Imported, bs.Status.Missing, bs.Status.Rejected)
				if rd := condition(bs.Status.Conditions, fleetv1alpha1.ConditionReady); rd != nil && rd.Status != metav1.ConditionTrue && rd.Reason != "" {
					line += fmt.Sprintf(" (%s: %s)", rd.Reason, oneLine(rd.Message))
				}
				switch bs.Status.Phase {
				case backupv1alpha1.TaskCompleted, backupv1alpha1.TaskFailed:
					return line, true
				}
				return line, false
			})
			if err != nil {
				return err
			}
			if bs.Status.Phase == backupv1alpha1.TaskFailed {
				return &exitError{code: ExitUnsuccessful, msg: fmt.Sprintf("sync %s ended Failed", bs.Name)}
			}
			return nil
		},
	}
}
