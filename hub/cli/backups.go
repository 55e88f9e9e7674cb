package cli

import (
	"context"
	"fmt"
	"github.com/spf13/pflag"
	"io"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// backupPhases are the phases a Backup can have, for --phase.
var backupPhases = []fleetv1alpha1.BackupPhase{
	fleetv1alpha1.BackupPending, fleetv1alpha1.BackupInProgress, fleetv1alpha1.BackupSuccess,
	fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupAborted,
	fleetv1alpha1.BackupDeleting, fleetv1alpha1.BackupDeletePending, fleetv1alpha1.BackupCloudBackupMissing,
}

func backupsCommand() *command {
	var cluster, location, phase string
	return &command{
		use:     "backups [--cluster C] [--location L] [--phase P]",
		short:   "List backups: cluster, location, phase, items, size, origin",
		example: "lifeboat backups -n team-a --cluster spoke-1 --phase Success",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&cluster, "cluster", "", "only backups of this cluster")
			fs.StringVar(&location, "location", "", "only backups to this location")
			fs.StringVar(&phase, "phase", "", "only backups in this phase: "+phaseList())
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			var want fleetv1alpha1.BackupPhase
			if phase != "" {
				for _, p := range backupPhases {
					if strings.EqualFold(string(p), phase) {
						want = p
					}
				}
				if want == "" {
					return usagef("unknown --phase %q: use one of %s", phase, phaseList())
				}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.listNamespace()
			list := &fleetv1alpha1.BackupList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return apiError(err, "backups")
			}
			kept := list.Items[:0]
			for _, b := range list.Items {
				if (cluster == "" || string(b.Spec.Cluster) == cluster) &&
					(location == "" || string(b.Spec.Location) == location) &&
					(want == "" || b.Status.Phase == want) {
					kept = append(kept, b)
				}
			}
			list.Items = kept
			if s.structured() {
				return s.printObject(list)
			}
			if len(list.Items) == 0 {
				s.note("No backups found %s.", inNamespace(ns))
				return nil
			}
			return printBackups(s.out(), list.Items, ns == "", s.wide())
		},
	}
}

func phaseList() string {
	names := make([]string, len(backupPhases))
	for i, p := range backupPhases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// PrintBackups writes the table of the Backups in namespace (every namespace
// if empty), as `lifeboat backups` shows them.
func PrintBackups(ctx context.Context, w io.Writer, c client.Client, namespace string) error {
	list := &fleetv1alpha1.BackupList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return apiError(err, "backups")
	}
	if len(list.Items) == 0 {
		_, err := fmt.Fprintf(w, "No backups found %s.\n", inNamespace(namespace))
		return err
	}
	return printBackups(w, list.Items, namespace == "", false)
}

func printBackups(w io.Writer, items []fleetv1alpha1.Backup, withNamespace, wide bool) error {
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	var headers []string
	if withNamespace {
		headers = append(headers, "NAMESPACE")
	}
	headers = append(headers, "NAME", "CLUSTER", "LOCATION", "PHASE", "ITEMS", "SIZE", "STARTED", "AGE", "ORIGIN")
	if wide {
		headers = append(headers, "STAGE", "DURATION", "WARNINGS", "ERRORS", "EXPIRES", "BACKUP ID")
	}
	t := newTable(w, headers...)
	for _, b := range items {
		var cells []string
		if withNamespace {
			cells = append(cells, b.Namespace)
		}
		items, bytes := progress(b.Status.Progress)
		cells = append(cells, b.Name, string(b.Spec.Cluster), string(b.Spec.Location), string(b.Status.Phase),
			items, bytes, age(b.Status.StartTime), age(&b.CreationTimestamp), string(b.Status.Origin))
		if wide {
			expires := ""
			if b.Status.Expiration != nil {
				expires = b.Status.Expiration.UTC().Format("2006-01-02T15:04Z")
			}
			cells = append(cells, string(b.Status.Stage), took(b.Status.StartTime, b.Status.CompletionTime),
				fmt.Sprint(b.Status.Warnings), fmt.Sprint(b.Status.Errors), expires, string(b.Status.BackupID))
		}
		t.row(cells...)
	}
	return t.flush()
}

// progress shows items (done, or done/total while unfinished) and bytes.
func progress(p *backupv1alpha1.Progress) (items, bytes string) {
	if p == nil {
		return "", ""
	}
	items = fmt.Sprint(p.ItemsDone)
	if p.ItemsTotal > p.ItemsDone {
		items = fmt.Sprintf("%d/%d", p.ItemsDone, p.ItemsTotal)
	}
	return items, size(p.BytesDone)
}

func describeBackupCommand() *command {
	return &command{
		use:     "describe backup NAME",
		short:   "Show a backup: stages, progress, warnings and errors, conditions, where its data is, its restores",
		example: "lifeboat describe backup shop -n team-a",
		args:    1,
		run: func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			b := &fleetv1alpha1.Backup{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: s.namespace(), Name: args[0]}, b); err != nil {
				return apiError(err, objectName("backup", s.namespace(), args[0]))
			}
			if s.structured() {
				return s.printObject(b)
			}
			return describeBackup(ctx, s.out(), c, b)
		},
	}
}

// dataPath is where a backup's data is in its location: the folder
// lifeboat/v1/backups/<cluster>/<id>/ under the location's prefix, and its URL.
func dataPath(loc *fleetv1alpha1.BackupLocation, cluster string, id backupv1alpha1.BackupID) (folder, url string) {
	a := loc.Spec.Azure
	parts := []string{a.Container}
	if a.Prefix != "" {
		parts = append(parts, strings.Trim(a.Prefix, "/"))
	}
	parts = append(parts, "lifeboat/v1/backups", cluster, string(id))
	path := strings.Join(parts, "/") + "/"
	return a.StorageAccount + "/" + path, a.ServiceURL() + "/" + path
}

// fields returns a function writing one "Name:  value" line of a description
// to w (<none> for an empty value).
func fields(w io.Writer) func(name, value string) {
	return func(name, value string) {
		if value == "" {
			value = none
		}
		fmt.Fprintf(w, "%-16s%s\n", name+":", value)
	}
}

func describeBackup(ctx context.Context, w io.Writer, c client.Client, b *fleetv1alpha1.Backup) error {
	field := fields(w)
	field("Name", b.Name)
	field("Namespace", b.Namespace)
	field("Cluster", string(b.Spec.Cluster))
	field("Location", string(b.Spec.Location))
	field("Origin", string(b.Status.Origin))
	field("Phase", string(b.Status.Phase))
	field("Stage", stages(b.Status.Stage, b.Status.Phase))
	field("Selection", backupSelection(b))
	if b.Spec.ExecRules != nil {
		field("Exec rules", fmt.Sprintf("pre %v, post %v", b.Spec.ExecRules.Pre, b.Spec.ExecRules.Post))
	}
	field("Volumes", string(b.Spec.Volumes))
	ttl := ""
	if b.Spec.TTL != nil {
		ttl = shortDuration(b.Spec.TTL.Duration)
	}
	field("TTL", ttl)
	field("Created", timestamp(&b.CreationTimestamp))
	field("Started", timestamp(b.Status.StartTime))
	completed := timestamp(b.Status.CompletionTime)
	if b.Status.CompletionTime != nil {
		completed += ", took " + took(b.Status.StartTime, b.Status.CompletionTime)
	}
	field("Completed", completed)
	field("Expires", timestamp(b.Status.Expiration))
	if p := b.Status.Progress; p != nil {
		field("Progress", fmt.Sprintf("%d of %d items, %s written", p.ItemsDone, p.ItemsTotal, size(p.BytesDone)))
	} else {
		field("Progress", "")
	}
	field("Warnings", fmt.Sprint(b.Status.Warnings))
	field("Errors", fmt.Sprint(b.Status.Errors))
	if b.DeletionTimestamp != nil {
		field("Deleting since", timestamp(b.DeletionTimestamp))
	}
	if b.Annotations[fleetv1alpha1.ForceDeleteAnnotation] == "true" {
		field("Force delete", "requested (the hub record goes; the data is purged once a cluster can reach the location)")
	}

	// Where the data is.
	loc := &fleetv1alpha1.BackupLocation{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: string(b.Spec.Location)}, loc); {
	case err != nil:
		field("Data", fmt.Sprintf("unknown: %v", apiError(err, objectName("backup location", b.Namespace, string(b.Spec.Location)))))
	case b.Status.BackupID == "":
		field("Storage", strings.TrimSuffix(strings.Join([]string{loc.Spec.Azure.StorageAccount, loc.Spec.Azure.Container, loc.Spec.Azure.Prefix}, "/"), "/")+"/")
		field("Data", "not written yet: the cluster has not started the backup")
	default:
		folder, url := dataPath(loc, string(b.Spec.Cluster), b.Status.BackupID)
		field("Backup ID", string(b.Status.BackupID))
		field("Data", folder)
		field("URL", url)
	}
	printConditions(w, b.Status.Conditions)

	restores := &fleetv1alpha1.RestoreList{}
	if err := c.List(ctx, restores, client.InNamespace(b.Namespace)); err != nil {
		fmt.Fprintf(w, "Restores:       unknown: %v\n", apiError(err, "restores"))
		return nil
	}
	var mine []fleetv1alpha1.Restore
	for _, r := range restores.Items {
		if string(r.Spec.Backup) == b.Name {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintln(w, "Restores:       <none>")
		return nil
	}
	fmt.Fprintln(w, "Restores:")
	t := newTable(w, "  NAME", "CLUSTER", "PHASE", "ITEMS", "AGE")
	for _, r := range mine {
		items, _ := progress(r.Status.Progress)
		t.row("  "+r.Name, restoreCluster(&r, b), string(r.Status.Phase), items, age(&r.CreationTimestamp))
	}
	return t.flush()
}

// restoreCluster is where a restore goes: its resolved cluster, else its
// spec's, else the backup's cluster.
func restoreCluster(r *fleetv1alpha1.Restore, b *fleetv1alpha1.Backup) string {
	switch {
	case r.Status.Cluster != "":
		return string(r.Status.Cluster)
	case r.Spec.Cluster != "":
		return string(r.Spec.Cluster)
	case b != nil:
		return string(b.Spec.Cluster)
	}
	return ""
}

// stageOrder is the order of a backup's stages.
var stageOrder = []backupv1alpha1.BackupStage{
	backupv1alpha1.StageInitial, backupv1alpha1.StagePreExecRule, backupv1alpha1.StageResources,
	backupv1alpha1.StageVolumes, backupv1alpha1.StagePostExecRule, backupv1alpha1.StageFinal,
}

// stages shows the stage among all of them: Initial > [Resources] > Volumes > ...
func stages(current backupv1alpha1.BackupStage, phase fleetv1alpha1.BackupPhase) string {
	if current == "" {
		return ""
	}
	parts := make([]string, len(stageOrder))
	for i, st := range stageOrder {
		parts[i] = string(st)
		if st == current {
			parts[i] = "[" + string(st) + "]"
		}
	}
	return string(current) + "  (" + strings.Join(parts, " > ") + ")"
}

// backupSelection is the Backup's selection; for one a sync imported, what
// its backup.json records.
func backupSelection(b *fleetv1alpha1.Backup) string {
	if b.Spec.Selection != nil || b.Status.Origin != fleetv1alpha1.OriginSynced {
		return selection(b.Spec.Selection)
	}
	rec := b.Status.RecordedSelection
	if rec == nil {
		return "not recorded (imported by a sync; backup.json records no selection)"
	}
	var parts []string
	list := func(name string, items []string) {
		if len(items) > 0 {
			parts = append(parts, name+" "+strings.Join(items, ","))
		}
	}
	list("namespaces", toStrings(rec.IncludedNamespaces))
	list("excluding namespaces", toStrings(rec.ExcludedNamespaces))
	if rec.NamespacesOmitted > 0 {
		parts = append(parts, fmt.Sprintf("and %d more namespaces", rec.NamespacesOmitted))
	}
	if rec.Resources {
		parts = append(parts, "a resource filter")
	}
	if rec.LabelSelector {
		parts = append(parts, "a label selector")
	}
	if rec.ClusterScopedResources != "" {
		parts = append(parts, "cluster-scoped "+string(rec.ClusterScopedResources))
	}
	what := "everything"
	if len(parts) > 0 {
		what = strings.Join(parts, "; ")
	}
	return what + "  (as backup.json records it)"
}

func selection(sel *backupv1alpha1.ResourceSelection) string {
	if sel == nil {
		return "everything"
	}
	var parts []string
	list := func(name string, items []string) {
		if len(items) > 0 {
			parts = append(parts, name+" "+strings.Join(items, ","))
		}
	}
	list("namespaces", toStrings(sel.IncludedNamespaces))
	list("excluding namespaces", toStrings(sel.ExcludedNamespaces))
	list("resources", toStrings(sel.IncludedResources))
	list("excluding resources", toStrings(sel.ExcludedResources))
	if sel.LabelSelector != nil {
		parts = append(parts, "labels "+fmt.Sprint(sel.LabelSelector.MatchLabels))
	}
	if sel.ClusterScopedResources != "" {
		parts = append(parts, "cluster-scoped "+string(sel.ClusterScopedResources))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, "; ")
}

func toStrings[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func restoresCommand() *command {
	var backup string
	return &command{
		use:     "restores [--backup B]",
		short:   "List restores: backup, cluster, phase, items",
		example: "lifeboat restores -n team-a --backup shop",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&backup, "backup", "", "only restores of this backup")
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.listNamespace()
			list := &fleetv1alpha1.RestoreList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return apiError(err, "restores")
			}
			kept := list.Items[:0]
			for _, r := range list.Items {
				if backup == "" || string(r.Spec.Backup) == backup {
					kept = append(kept, r)
				}
			}
			list.Items = kept
			if s.structured() {
				return s.printObject(list)
			}
			if len(list.Items) == 0 {
				s.note("No restores found %s.", inNamespace(ns))
				return nil
			}
			var headers []string
			if ns == "" {
				headers = append(headers, "NAMESPACE")
			}
			headers = append(headers, "NAME", "BACKUP", "CLUSTER", "PHASE", "ITEMS", "STARTED", "AGE")
			if s.wide() {
				headers = append(headers, "DURATION", "WARNINGS", "ERRORS", "EXISTING", "NAMESPACE MAPPING")
			}
			t := newTable(s.out(), headers...)
			for _, r := range list.Items {
				var cells []string
				if ns == "" {
					cells = append(cells, r.Namespace)
				}
				items, _ := progress(r.Status.Progress)
				cells = append(cells, r.Name, string(r.Spec.Backup), restoreCluster(&r, nil), string(r.Status.Phase), items,
					age(r.Status.StartTime), age(&r.CreationTimestamp))
				if s.wide() {
					cells = append(cells, took(r.Status.StartTime, r.Status.CompletionTime), fmt.Sprint(r.Status.Warnings),
						fmt.Sprint(r.Status.Errors), string(r.Spec.ExistingResourcePolicy), mapping(r.Spec.NamespaceMapping))
				}
				t.row(cells...)
			}
			return t.flush()
		},
	}
}

func mapping[M ~map[string]V, V ~string](m M) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + string(m[k])
	}
	return strings.Join(parts, ",")
}
