// Package cli is the `lifeboat` command line: what a fleet admin sees and does
// on the hub (clusters, locations, backups, restores, syncs), with kubectl's
// global flags. hub/cmd/lifeboat is its main; built as kubectl-lifeboat it is
// the kubectl plugin `kubectl lifeboat`.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Exit codes of the command line.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: the command failed: the hub refused it, an object was not
	// found, the hub could not be reached.
	ExitError = 1
	// ExitUsage: the command line is wrong: unknown command or flag, a missing
	// or malformed argument.
	ExitUsage = 2
	// ExitUnsuccessful: --wait saw the backup, restore or sync end, but not
	// successfully (Failed, Aborted).
	ExitUnsuccessful = 3
	// ExitTimeout: --wait gave up after --timeout.
	ExitTimeout = 4
)

// Scheme knows the hub kinds the command line reads and writes, and OCM's
// ManifestWork, which holds each cluster's connection to a location.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(fleetv1alpha1.AddToScheme(Scheme))
	utilruntime.Must(workv1.Install(Scheme))
}

// usageError is a mistake on the command line; it exits with ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries a specific exit code, e.g. a waited-for backup that failed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// globalFlags are the flags every command takes: kubectl's connection flags
// (cli-runtime's ConfigFlags: --kubeconfig, --context, -n, --as, --token,
// --server, ...) and -A and -o.
type globalFlags struct {
	config        *genericclioptions.ConfigFlags
	allNamespaces bool
	output        string
}

func (g *globalFlags) register(fs *pflag.FlagSet) {
	g.config = genericclioptions.NewConfigFlags(false)
	// --cluster names a Lifeboat cluster in this command line, not a
	// kubeconfig cluster (use --context to choose that).
	g.config.ClusterName = nil
	g.config.AddFlags(fs)
	fs.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "list objects of every namespace")
	fs.StringVarP(&g.output, "output", "o", "",
		"output format: table (default), wide, yaml, json, name, jsonpath=..., jsonpath-as-json=..., go-template=..., custom-columns=...")
}

// command is one command of the command line.
type command struct {
	// use is how to call it, for the usage text.
	use string
	// short says what it does.
	short string
	// example is a command line to show.
	example string
	// flags registers the command's own flags.
	flags func(fs *pflag.FlagSet)
	// args is the number of positional arguments (names) it takes.
	args int
	// run runs it; args are the positional arguments.
	run func(ctx context.Context, s *session, args []string) error
}

// commandFunc builds a command whose flags live in the closure.
type commandFunc func() *command

// commands maps the command words ("clusters", "backup create") to the commands.
var commands = map[string]commandFunc{
	"clusters":         clustersCommand,
	"locations":        locationsCommand,
	"backups":          backupsCommand,
	"restores":         restoresCommand,
	"describe backup":  describeBackupCommand,
	"describe restore": describeRestoreCommand,
	"schedules":        schedulesCommand,
	"dashboard":        dashboardCommand,
	"backup create":    backupCreateCommand,
	"backup delete":    backupDeleteCommand,
	"restore create":   restoreCreateCommand,
	"sync":             syncCommand,
	"protection":       protectionCommand,
	"logs backup":      logsBackupCommand,
	"logs restore":     logsRestoreCommand,
}

// aliases are other words for the same commands, as kubectl accepts them.
var aliases = map[string][]string{
	"clusters":         {"cluster", "bcl"},
	"locations":        {"location", "bloc"},
	"backups":          {"bkp", "backup list"},
	"restores":         {"rst", "restore list"},
	"describe backup":  {"describe backups", "describe bkp"},
	"describe restore": {"describe restores", "describe rst"},
	"schedules":        {"schedule", "bsched"},
}

// groups are the first words of two-word commands, with what they say when
// the second word is missing or unknown.
var groups = map[string]struct{ short, missing, unknown string }{
	"backup": {"Create or delete backups", "backup needs a subcommand: create or delete (or list backups with '%s backups')",
		"unknown subcommand %q of backup: use create or delete"},
	"restore": {"Create restores", "restore needs a subcommand: create (or list restores with '%s restores')",
		"unknown subcommand %q of restore: use create"},
	"logs": {"Print the log of a backup or restore", "logs needs a kind and a name: logs backup NAME or logs restore NAME",
		"cannot print the log of %q: use backup or restore"},
	"describe": {"Show one object in detail", "describe needs a kind and a name: describe backup NAME or describe restore NAME",
		"cannot describe %q: use backup or restore"},
}

// App runs the command line with its output streams. The zero value is not
// usable; New or Run make one.
type App struct {
	// Out is where results go; Err where errors and notes go.
	Out, Err io.Writer
	// PollInterval is how often --wait looks at the object (default 1s).
	PollInterval time.Duration
	// DeleteSettle is how long `backup delete` without --wait gives the hub
	// to act before it shows where the deletion stands (default 5s).
	DeleteSettle time.Duration
}

func (a *App) deleteSettle() time.Duration {
	if a.DeleteSettle > 0 {
		return a.DeleteSettle
	}
	return 5 * time.Second
}

// Run runs the command line args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&App{Out: stdout, Err: stderr}).Run(ctx, args)
}

// runError is an error of a command that ran (as opposed to a command line
// cobra could not parse, which is a usage error).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// Run runs the command line args (without the program name) and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	root := a.root()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(a.Err, "Error: %v\n", err)
	var ue *usageError
	var ee *exitError
	var re *runError
	switch {
	case errors.As(err, &ue) || !errors.As(err, &re):
		fmt.Fprintf(a.Err, "Run '%s help' for usage.\n", programName())
		return ExitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return ExitError
}

// root builds the command tree: one cobra command per entry of commands,
// under the group of its first word, with its aliases.
func (a *App) root() *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:   "lifeboat",
		Short: "Show and drive the Lifeboat fleet from the hub",
		Long: programName() + " shows and drives the Lifeboat fleet from the hub.\n\n" +
			"Exit codes: 0 done, 1 error (refused, not found, unreachable), 2 bad command line,\n" +
			"3 a waited-for backup, restore or sync ended unsuccessfully, 4 --wait timed out.",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: programName()},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(a.Out)
	root.SetErr(a.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	g.register(root.PersistentFlags())
	parents := map[string]*cobra.Command{"": root}
	parent := func(path string) *cobra.Command {
		if c, ok := parents[path]; ok {
			return c
		}
		grp := groups[path]
		c := &cobra.Command{
			Use:   path + " SUBCOMMAND",
			Short: grp.short,
			Args:  cobra.ArbitraryArgs,
			RunE: func(_ *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usagef(grp.missing, programName())
				}
				return usagef(grp.unknown, args[0])
			},
		}
		root.AddCommand(c)
		parents[path] = c
		return c
	}
	keys := make([]string, 0, len(commands))
	for k := range commands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		group, _ := splitKey(key)
		leaf := a.leaf(key, &g, commands[key]())
		for _, alias := range aliases[key] {
			ag, aw := splitKey(alias)
			if ag == group {
				leaf.Aliases = append(leaf.Aliases, aw)
				continue
			}
			other := a.leaf(key, &g, commands[key]())
			other.Use, other.Hidden = aw+strings.TrimPrefix(other.Use, other.Name()), true
			parent(ag).AddCommand(other)
		}
		parent(group).AddCommand(leaf)
	}
	return root
}

// splitKey splits command words into the group and the last word:
// "backup create" -> "backup", "create"; "clusters" -> "", "clusters".
func splitKey(key string) (group, word string) {
	if i := strings.LastIndex(key, " "); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// leaf makes the cobra command for cmd, the command at words key.
func (a *App) leaf(key string, g *globalFlags, cmd *command) *cobra.Command {
	group, word := splitKey(key)
	use := strings.TrimSpace(strings.TrimPrefix(cmd.use, group))
	c := &cobra.Command{
		Use:     use,
		Short:   cmd.short,
		Example: "  " + cmd.example,
		Args: func(_ *cobra.Command, positional []string) error {
			if len(positional) == cmd.args {
				return nil
			}
			if cmd.args == 0 {
				return usagef("%s takes no arguments, got %q", key, strings.Join(positional, " "))
			}
			if len(positional) == 0 {
				return usagef("%s needs a NAME: %s %s", key, programName(), cmd.use)
			}
			return usagef("%s takes one NAME, got %q", key, strings.Join(positional, " "))
		},
		RunE: func(c *cobra.Command, positional []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			s := &session{app: a, flags: *g}
			if err := cmd.run(c.Context(), s, positional); err != nil {
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				return &runError{err: err}
			}
			return nil
		},
	}
	if !strings.HasPrefix(use, word) {
		c.Use = word + " " + use
	}
	if cmd.flags != nil {
		cmd.flags(c.Flags())
	}
	return c
}

// programName is how the user called us: "kubectl lifeboat" as a plugin.
func programName() string {
	if len(os.Args) > 0 && strings.HasPrefix(baseName(os.Args[0]), "kubectl-") {
		return "kubectl lifeboat"
	}
	return "lifeboat"
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// session is one run of a command: its global flags and, once needed, the
// hub client.
type session struct {
	app   *App
	flags globalFlags

	c  client.Client
	ns string
	// nsExplicit is true when -n was given.
	nsExplicit bool
}

// client connects to the hub as kubectl would, from the connection flags.
func (s *session) client() (client.Client, error) {
	if s.c != nil {
		return s.c, nil
	}
	loader := s.flags.config.ToRawKubeConfigLoader()
	cfg, err := loader.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no kubeconfig for the hub: set --kubeconfig or $KUBECONFIG")
		}
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, explicit, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "lifeboat-cli"
	// Show the API server's warnings as kubectl does, not through a logger.
	cfg.WarningHandler = rest.NewWarningWriter(s.app.Err, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the hub: %w", err)
	}
	s.c, s.ns, s.nsExplicit = c, ns, explicit && *s.flags.config.Namespace != ""
	return c, nil
}

// namespace is the namespace to work in.
func (s *session) namespace() string { return s.ns }

// listNamespace is the namespace to list in: "" with -A.
func (s *session) listNamespace() string {
	if s.flags.allNamespaces {
		return ""
	}
	return s.ns
}

func (s *session) wide() bool { return s.flags.output == "wide" }

// structured is true when the output is not a table: a printer prints the
// objects themselves.
func (s *session) structured() bool {
	return s.flags.output != "" && s.flags.output != "table" && s.flags.output != "wide"
}

func (s *session) pollInterval() time.Duration {
	if s.app.PollInterval > 0 {
		return s.app.PollInterval
	}
	return time.Second
}

func (s *session) out() io.Writer { return s.app.Out }

// note writes a remark that is not the result (to stderr, as kubectl does).
func (s *session) note(format string, args ...any) {
	fmt.Fprintf(s.app.Err, format+"\n", args...)
}
