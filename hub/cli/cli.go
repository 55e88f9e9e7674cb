// Package cli is the `lifeboat` command line: what a fleet admin sees and does
// on the hub (clusters, locations, backups, restores, syncs), with kubectl's
// global flags. hub/cmd/lifeboat is its main; built as kubectl-lifeboat it is
// the kubectl plugin `kubectl lifeboat`.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
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

// Scheme knows the hub kinds the command line reads and writes.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(fleetv1alpha1.AddToScheme(Scheme))
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

// globalFlags are kubectl's flags that every command takes.
type globalFlags struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	output        string
}

// valueFlags are the global flags that take a value, for finding the command
// words among the arguments.
var valueFlags = map[string]bool{"kubeconfig": true, "context": true, "n": true, "namespace": true, "o": true, "output": true}

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file of the hub (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&g.context, "context", "", "kubeconfig context to use")
	fs.StringVar(&g.namespace, "namespace", "", "namespace of the hub objects (default: the context's namespace, else default)")
	fs.StringVar(&g.namespace, "n", "", "shorthand for --namespace")
	fs.BoolVar(&g.allNamespaces, "all-namespaces", false, "list objects of every namespace")
	fs.BoolVar(&g.allNamespaces, "A", false, "shorthand for --all-namespaces")
	fs.StringVar(&g.output, "output", "", "output format: table (default), wide, yaml or json")
	fs.StringVar(&g.output, "o", "", "shorthand for --output")
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
	flags func(fs *flag.FlagSet)
	// args is the number of positional arguments (names) it takes.
	args int
	// run runs it; args are the positional arguments.
	run func(ctx context.Context, s *session, args []string) error
}

// commandFunc builds a command whose flags live in the closure.
type commandFunc func() *command

// commands maps the command words ("clusters", "backup create") to the commands.
var commands = map[string]commandFunc{
	"clusters":        clustersCommand,
	"locations":       locationsCommand,
	"backups":         backupsCommand,
	"restores":        restoresCommand,
	"describe backup": describeBackupCommand,
	"backup create":   backupCreateCommand,
	"backup delete":   backupDeleteCommand,
	"restore create":  restoreCreateCommand,
	"sync":            syncCommand,
	"protection":      protectionCommand,
}

// aliases are other words for the same commands, as kubectl accepts them.
var aliases = map[string]string{
	"cluster": "clusters", "bcl": "clusters",
	"location": "locations", "bloc": "locations",
	"bkp":          "backups",
	"restore list": "restores", "rst": "restores",
	"backup list":      "backups",
	"describe backups": "describe backup", "describe bkp": "describe backup",
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

// Run runs the command line args (without the program name) and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	err := a.run(ctx, args)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(a.Err, "Error: %v\n", err)
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.Err, "Run '%s help' for usage.\n", programName())
		return ExitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return ExitError
}

func (a *App) run(ctx context.Context, args []string) error {
	words, rest := splitCommand(args)
	if len(words) == 0 || words[0] == "help" {
		if len(words) == 0 && !hasHelpFlag(rest) && len(rest) > 0 {
			return usagef("no command given")
		}
		a.usage(a.Out)
		return nil
	}
	key, err := lookup(words)
	if err != nil {
		return err
	}
	cmd := commands[key]()
	var g globalFlags
	fs := flag.NewFlagSet(key, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	positional, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		a.commandUsage(a.Out, cmd, fs)
		return err
	}
	if err != nil {
		return usagef("%s: %v", key, err)
	}
	if len(positional) != cmd.args {
		if cmd.args == 0 {
			return usagef("%s takes no arguments, got %q", key, strings.Join(positional, " "))
		}
		if len(positional) == 0 {
			return usagef("%s needs a NAME: %s %s", key, programName(), cmd.use)
		}
		return usagef("%s takes one NAME, got %q", key, strings.Join(positional, " "))
	}
	switch g.output {
	case "", "table", "wide", "yaml", "json":
	default:
		return usagef("unknown output format %q: use table, wide, yaml or json", g.output)
	}
	s := &session{app: a, flags: g}
	return cmd.run(ctx, s, positional)
}

// lookup finds the command for the command words.
func lookup(words []string) (string, error) {
	for _, n := range []int{2, 1} {
		if len(words) < n {
			continue
		}
		key := strings.Join(words[:n], " ")
		if a, ok := aliases[key]; ok {
			key = a
		}
		if _, ok := commands[key]; ok && len(words) == n {
			return key, nil
		}
	}
	switch words[0] {
	case "backup":
		if len(words) == 1 {
			return "", usagef("backup needs a subcommand: create or delete (or list backups with '%s backups')", programName())
		}
		return "", usagef("unknown subcommand %q of backup: use create or delete", words[1])
	case "restore":
		if len(words) == 1 {
			return "", usagef("restore needs a subcommand: create (or list restores with '%s restores')", programName())
		}
		return "", usagef("unknown subcommand %q of restore: use create", words[1])
	case "describe":
		if len(words) == 1 {
			return "", usagef("describe needs a kind and a name: describe backup NAME")
		}
		return "", usagef("cannot describe %q: only backup is supported", words[1])
	}
	return "", usagef("unknown command %q", words[0])
}

// commandWords says how many words each first word of a command takes.
func commandWords(first string) int {
	switch first {
	case "backup", "restore", "describe":
		return 2
	}
	return 1
}

// splitCommand takes the command words out of args, skipping flags and the
// values of global flags, so that flags may come before or after them as with
// kubectl: `lifeboat -n team-a backup create x` and `lifeboat backup create x -n team-a`.
func splitCommand(args []string) (words, rest []string) {
	want := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			rest = append(rest, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && valueFlags[name] && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		if len(words) == 0 {
			words = append(words, a)
			want = commandWords(a)
			continue
		}
		if len(words) < want {
			words = append(words, a)
			continue
		}
		rest = append(rest, a)
	}
	return words, rest
}

func hasHelpFlag(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// parseInterspersed parses flags wherever they are among the positional
// arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
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

func (a *App) usage(w io.Writer) {
	p := programName()
	fmt.Fprintf(w, "%s shows and drives the Lifeboat fleet from the hub.\n\nUsage:\n  %s [global flags] COMMAND [flags]\n\nCommands:\n", p, p)
	keys := make([]string, 0, len(commands))
	for k := range commands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := newTabWriter(w)
	for _, k := range keys {
		c := commands[k]()
		name := k
		if c.args > 0 {
			name += " NAME"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, c.short)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, `
Global flags (before or after the command):
  --kubeconfig PATH        kubeconfig of the hub (default: $KUBECONFIG or ~/.kube/config)
  --context NAME           kubeconfig context to use
  -n, --namespace NS       namespace of the hub objects (default: the context's namespace)
  -A, --all-namespaces     list objects of every namespace
  -o, --output FORMAT      table (default), wide, yaml or json

Exit codes: 0 done, 1 error (refused, not found, unreachable), 2 bad command line,
3 a waited-for backup, restore or sync ended unsuccessfully, 4 --wait timed out.

Run '%s COMMAND --help' for a command's flags.
`, p)
}

func (a *App) commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	p := programName()
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s %s\n", c.short, p, c.use)
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n  %s\n", c.example)
	}
	var own []*flag.Flag
	global := map[string]bool{"kubeconfig": true, "context": true, "n": true, "namespace": true, "A": true, "all-namespaces": true, "o": true, "output": true}
	fs.VisitAll(func(f *flag.Flag) {
		if !global[f.Name] {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		tw := newTabWriter(w)
		for _, f := range own {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(tw, "  --%s\t%s%s\n", f.Name, f.Usage, def)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\nGlobal flags: --kubeconfig, --context, -n/--namespace, -A/--all-namespaces, -o/--output (see '%s help').\n", p)
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

// client connects to the hub as kubectl would, from the kubeconfig and context.
func (s *session) client() (client.Client, error) {
	if s.c != nil {
		return s.c, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.flags.kubeconfig != "" {
		rules.ExplicitPath = s.flags.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: s.flags.context}
	if s.flags.namespace != "" {
		overrides.Context.Namespace = s.flags.namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no kubeconfig for the hub: set --kubeconfig or $KUBECONFIG")
		}
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, explicit, err := cc.Namespace()
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
	s.c, s.ns, s.nsExplicit = c, ns, explicit && s.flags.namespace != ""
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

func (s *session) structured() bool { return s.flags.output == "yaml" || s.flags.output == "json" }

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
