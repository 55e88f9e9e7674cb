package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/cmd/get"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// none is what a table shows for a value that is not set, as kubectl does.
const none = "<none>"

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
}

// table writes kubectl-like tables: uppercase headers, aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: newTabWriter(w)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = none
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// age is how long ago t was, kubectl style: 45s, 5m, 2h, 3d, 2y; empty if unset.
func age(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	d := time.Since(t.Time)
	if d < 0 {
		d = 0
	}
	return duration.ShortHumanDuration(d)
}

// took is how long a run took, from its start to its completion (or until now).
func took(start, end *metav1.Time) string {
	if start == nil {
		return ""
	}
	stop := time.Now()
	if end != nil {
		stop = end.Time
	}
	d := stop.Sub(start.Time)
	if d < time.Second {
		return "<1s"
	}
	return duration.HumanDuration(d)
}

// size is a byte count with binary units: 512B, 1.5KiB, 3.2MiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// shortDuration is a duration without trailing zero units: 6h, 90m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// timestamp is an absolute time with how long ago it was.
func timestamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return none
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), age(t))
}

// printFlags are the -o formats printers handle (table and wide are
// ours): cli-runtime's printers and kubectl's custom columns.
func printFlags() (*genericclioptions.PrintFlags, *get.CustomColumnsPrintFlags) {
	return genericclioptions.NewPrintFlags(""), get.NewCustomColumnsPrintFlags()
}

// checkOutput refuses an -o value no printer handles.
func checkOutput(format string) error {
	if format == "" || format == "table" || format == "wide" {
		return nil
	}
	_, err := printerFor(format)
	return err
}

// printerFor is the printer for an -o value other than table or wide.
func printerFor(format string) (printers.ResourcePrinter, error) {
	pf, cf := printFlags()
	name, _, _ := strings.Cut(format, "=")
	if slices.Contains(cf.AllowedFormats(), name) {
		return cf.ToPrinter(format)
	}
	pf.OutputFormat = &format
	p, err := pf.ToPrinter()
	if genericclioptions.IsNoCompatiblePrinterError(err) {
		return nil, usagef("unknown output format %q: use table, wide, %s or %s", format,
			strings.Join(pf.AllowedFormats(), ", "), strings.Join(cf.AllowedFormats(), ", "))
	}
	if err != nil {
		return nil, usagef("-o %s: %v", format, err)
	}
	return p, nil
}

// printObject prints one object, or a list as kubectl's kind List, with the
// -o printer, with apiVersion and kind set and without managed fields.
func (s *session) printObject(obj runtime.Object) error {
	p, err := printerFor(s.flags.output)
	if err != nil {
		return err
	}
	var v runtime.Object
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return err
		}
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}}}
		for _, it := range items {
			u, err := toUnstructured(it)
			if err != nil {
				return err
			}
			list.Items = append(list.Items, *u)
		}
		v = list
	} else if v, err = toUnstructured(obj); err != nil {
		return err
	}
	return p.PrintObj(v, s.out())
}

// toUnstructured is obj as printers want it: apiVersion and kind set.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	if err := prepare(obj); err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// prepare sets apiVersion and kind, which typed clients leave empty, and drops managed fields.
func prepare(obj runtime.Object) error {
	gvk, err := apiutil.GVKForObject(obj, Scheme)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
	}
	return nil
}

// apiError makes an API error say what it means for the user; what names the
// object or objects, e.g. `backup "shop" in namespace "team-a"`.
func apiError(err error, what string) error {
	if err == nil {
		return nil
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found", what)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed: %s", apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the hub refused your credentials (check --kubeconfig and --context): %s", apiMessage(err))
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s already exists", what)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("the hub rejected %s: %s", what, apiMessage(err))
	case meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err):
		return fmt.Errorf("this cluster does not serve the Lifeboat hub API (fleet.lifeboat.dev/v1alpha1): is --context the hub? (%v)", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}

// objectName names an object for messages: `backup "shop" in namespace "team-a"`.
func objectName(kind, namespace, name string) string {
	if namespace == "" {
		return fmt.Sprintf("%s %q", kind, name)
	}
	return fmt.Sprintf("%s %q in namespace %q", kind, name, namespace)
}

// inNamespace says where a list was taken, for "No ... found" notes.
func inNamespace(ns string) string {
	if ns == "" {
		return "in any namespace"
	}
	return fmt.Sprintf("in namespace %s", ns)
}

// condition finds a condition by type.
func condition(conds []metav1.Condition, t string) *metav1.Condition {
	return meta.FindStatusCondition(conds, t)
}

// printConditions writes conditions as an indented table.
func printConditions(w io.Writer, conds []metav1.Condition) {
	if len(conds) == 0 {
		fmt.Fprintln(w, "Conditions:     <none>")
		return
	}
	fmt.Fprintln(w, "Conditions:")
	t := newTable(w, "  TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
	for _, c := range conds {
		t.row("  "+c.Type, string(c.Status), c.Reason, age(&c.LastTransitionTime), oneLine(c.Message))
	}
	_ = t.flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
