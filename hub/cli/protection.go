package cli

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/duration"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func protectionCommand() *command {
	var cluster string
	return &command{
		use:     "protection [--cluster C]",
		short:   "Show which namespaces of each cluster are Protected, AtRisk or Unprotected, and why",
		example: "lifeboat protection --cluster spoke-1",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&cluster, "cluster", "", "only this cluster")
		},
		run: func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			list := &fleetv1alpha1.BackupClusterList{}
			if err := c.List(ctx, list); err != nil {
				return apiError(err, "backup clusters")
			}
			if cluster != "" {
				kept := list.Items[:0]
				for _, cl := range list.Items {
					if cl.Name == cluster {
						kept = append(kept, cl)
					}
				}
				if len(kept) == 0 {
					return fmt.Errorf("backup cluster %q not found", cluster)
				}
				list.Items = kept
			}
			if s.structured() {
				return s.printObject(list)
			}
			if len(list.Items) == 0 {
				s.note("No clusters found: create a ClusterDiscovery or a BackupCluster on the hub.")
				return nil
			}
			return printProtection(s.out(), list.Items)
		},
	}
}

// printProtection writes a table of each cluster's verdict counts, then the
// namespaces that are not Protected, as their clusters' reports name them.
func printProtection(w io.Writer, clusters []fleetv1alpha1.BackupCluster) error {
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })
	t := newTable(w, "CLUSTER", "NAMESPACES", "PROTECTED", "AT RISK", "UNPROTECTED", "INVENTORY", "NOTE")
	var listed, named int
	for _, cl := range clusters {
		p := cl.Status.Protection
		switch {
		case p == nil:
			t.row(cl.Name, "", "", "", "", "", "not evaluated yet")
		case p.Reason != "":
			t.row(cl.Name, "", "", "", "", age(p.InventoryTime), p.Reason+": "+p.Message)
		default:
			note := ""
			if p.NamespacesOmitted > 0 {
				note = fmt.Sprintf("%d namespaces beyond the inventory's bound have no verdict", p.NamespacesOmitted)
			}
			t.row(cl.Name, fmt.Sprint(p.Namespaces), fmt.Sprint(p.Protected), fmt.Sprint(p.AtRisk), fmt.Sprint(p.Unprotected), age(p.InventoryTime), note)
			listed += int(p.AtRisk + p.Unprotected)
			named += len(p.NotProtected)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if named == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t = newTable(w, "CLUSTER", "NAMESPACE", "VERDICT", "LAST SUCCESS", "BACKUP", "RPO", "SCHEDULE")
	for _, cl := range clusters {
		if cl.Status.Protection == nil {
			continue
		}
		for _, n := range cl.Status.Protection.NotProtected {
			rpo := ""
			if n.RPO != nil {
				rpo = duration.HumanDuration(n.RPO.Duration)
			}
			last := age(n.LastSuccessfulTime)
			if last != "" {
				last += " ago"
			}
			t.row(cl.Name, n.Namespace, string(n.Verdict), last, n.LastSuccessfulBackup, rpo, n.Schedule)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if named < listed {
		fmt.Fprintf(w, "(%d more not Protected; each cluster's report names the first %d)\n", listed-named, fleetv1alpha1.MaxProtectionNamespaces)
	}
	return nil
}
