// Command registration is OCM's registration binary (hub controller and
// spoke agent) as open-cluster-management.io/ocm v1.2.0's cmd/registration
// builds it, with one flag more for the local fleet:
// --certificate-resync-interval sets how often the agent's certificate
// controllers look at their client certificates (register.ControllerResyncInterval,
// 5 minutes in OCM, which exposes it for its own integration tests). The agent
// renews a certificate once less than 20-25% of its life remains, and learns
// that only at such a look; the fleet's e2e test of a rotation by expiry uses
// certificates of minutes, not the year the hub signs in production.
package main

import (
	goflag "flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"

	ocmfeature "open-cluster-management.io/api/feature"

	"open-cluster-management.io/ocm/pkg/cmd/hub"
	"open-cluster-management.io/ocm/pkg/cmd/spoke"
	"open-cluster-management.io/ocm/pkg/features"
	"open-cluster-management.io/ocm/pkg/registration/register"
	"open-cluster-management.io/ocm/pkg/version"
)

func main() {
	pflag.CommandLine.SetNormalizeFunc(utilflag.WordSepNormalizeFunc)
	pflag.CommandLine.AddGoFlagSet(goflag.CommandLine)
	pflag.CommandLine.DurationVar(&register.ControllerResyncInterval, "certificate-resync-interval", register.ControllerResyncInterval,
		"How often the certificate controllers check their client certificates even when nothing changed (OCM: 5m).")

	logs.AddFlags(pflag.CommandLine)
	logs.InitLogs()
	defer logs.FlushLogs()

	utilruntime.Must(features.HubMutableFeatureGate.Add(ocmfeature.DefaultHubRegistrationFeatureGates))
	features.HubMutableFeatureGate.AddFlag(pflag.CommandLine)

	cmd := &cobra.Command{
		Use:   "registration",
		Short: "Spoke Cluster Registration",
		Run: func(cmd *cobra.Command, args []string) {
			_ = cmd.Help()
			os.Exit(1)
		},
	}
	if v := version.Get().String(); v == "" {
		cmd.Version = "<unknown>"
	} else {
		cmd.Version = v
	}
	cmd.AddCommand(hub.NewRegistrationController())
	cmd.AddCommand(spoke.NewRegistrationAgent())
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}
