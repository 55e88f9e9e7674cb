package applicationbackup

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/commands"
	"github.com/lifeboat-dev/lifeboat/spoke/podexec"
)

// commandSources are the backup commands of the pods a backup takes: the
// running, ready pods with a backup-command annotation in the namespaces it
// backs up (the scope of its exec actions), one pod per top controller (the
// first by name) as K8up does, and every pod that no controller owns. A pod
// whose annotations are not valid is returned as skipped, naming it.
func (r *Reconciler) commandSources(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup) ([]CommandSource, []SkippedCommand, error) {
	scope := hookScope(ab, rn.selfService)
	namespaces := scope.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var pods []corev1.Pod
	for _, ns := range namespaces {
		if ns == "" && len(scope.Namespaces) > 0 {
			continue // named, all excluded
		}
		list := &corev1.PodList{}
		if err := r.APIReader.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, nil, fmt.Errorf("listing pods: %w", err)
		}
		for _, p := range list.Items {
			if _, ok := p.Annotations[backupv1alpha1.BackupCommandAnnotation]; ok && scope.Allows(p.Namespace) &&
				p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podexec.Ready(p) {
				pods = append(pods, p)
			}
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	var sources []CommandSource
	var bad []SkippedCommand
	seen := map[string]bool{} // namespace/owner
	for _, p := range pods {
		owner, err := commands.TopOwner(ctx, r.APIReader, p)
		if err != nil {
			return nil, nil, err
		}
		if owner != "" {
			if seen[p.Namespace+"/"+owner] {
				continue
			}
			seen[p.Namespace+"/"+owner] = true
		}
		s := CommandSource{Pod: p, Owner: owner}
		cmd, err := commands.BackupAnnotations(p, owner)
		s.Container, s.File, s.Command = cmd.Container, cmd.File, cmd.Command
		if err != nil {
			bad = append(bad, SkippedCommand{CommandSource: s, Reason: err.Error()})
			continue
		}
		sources = append(sources, s)
	}
	return sources, bad, nil
}
