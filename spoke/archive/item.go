package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Item is one Kubernetes object in a backup. Group is "" for the core group;
// Namespace is "" for a cluster-scoped object.
type Item struct {
	Group, Version, Resource, Kind, Namespace, Name string
	// Object is the object's JSON. Its apiVersion, kind, metadata.name and
	// metadata.namespace must agree with the fields above.
	Object []byte
	// Oversize is set by Reader.Items, with Object nil, for an entry larger
	// than the Reader's Limits.MaxObjectSize: its size in bytes. The Reader
	// checked its place in the backup and its bytes' sha256, not its JSON,
	// and did not keep it.
	Oversize int64
}

// Ref returns the item without its object.
func (it Item) Ref() ItemRef {
	return ItemRef{Group: it.Group, Version: it.Version, Resource: it.Resource, Kind: it.Kind, Namespace: it.Namespace, Name: it.Name}
}

// ItemRef names an item: an entry of resource-list.json.gz, and the item a log
// line is about.
type ItemRef struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// String returns the item's entry name in resources.tar.zst, which is also
// how error messages name it.
func (r ItemRef) String() string {
	return r.entryName()
}

// coreGroupDir stands for the core group ("") in entry names;
// clusterScopeDir for the namespace of cluster-scoped objects.
const (
	coreGroupDir    = "core"
	clusterScopeDir = "_cluster"
	entryRoot       = "resources"
	entryExt        = ".json"
)

// resourceKey is the item's group/version/resource as counted in backup.json.
func (r ItemRef) resourceKey() string {
	g := r.Group
	if g == "" {
		g = coreGroupDir
	}
	return g + "/" + r.Version + "/" + r.Resource
}

func (r ItemRef) entryName() string {
	ns := r.Namespace
	if ns == "" {
		ns = clusterScopeDir
	}
	return entryRoot + "/" + r.resourceKey() + "/" + ns + "/" + r.Name + entryExt
}

func (r ItemRef) apiVersion() string {
	if r.Group == "" {
		return r.Version
	}
	return r.Group + "/" + r.Version
}

// sameObject compares everything but Kind, which entry names do not hold.
func (r ItemRef) sameObject(o ItemRef) bool {
	return r.Group == o.Group && r.Version == o.Version && r.Resource == o.Resource &&
		r.Namespace == o.Namespace && r.Name == o.Name
}

// validate checks every field; the Kind only if withKind.
func (r ItemRef) validate(withKind bool) error {
	switch {
	case r.Group == coreGroupDir:
		return fmt.Errorf("group %q: the core group is \"\"", r.Group)
	case r.Group != "" && !isDNSSubdomain(r.Group):
		return fmt.Errorf("group %q: must be \"\" (the core group) or a DNS subdomain", r.Group)
	case !isDNSLabel(r.Version):
		return fmt.Errorf("version %q: must be a DNS label such as v1", r.Version)
	case !isDNSLabel(r.Resource):
		return fmt.Errorf("resource %q: must be a lowercase plural resource name such as configmaps", r.Resource)
	case withKind && !isKind(r.Kind):
		return fmt.Errorf("kind %q: must be a kind such as ConfigMap", r.Kind)
	case r.Namespace != "" && !isDNSLabel(r.Namespace):
		return fmt.Errorf("namespace %q: must be \"\" (cluster-scoped) or a namespace name", r.Namespace)
	case !isObjectName(r.Name):
		return fmt.Errorf("name %q: must be a Kubernetes object name", r.Name)
	}
	return nil
}

// Why an entry name is refused; the reader puts them after `entry "<name>": `.
var (
	errAbsolutePath = errors.New("path is absolute")
	errPathEscapes  = errors.New("path escapes the archive")
	errPathUnclean  = errors.New("path is not clean (empty, '.' or '//' segments)")
	errPathShape    = errors.New("path is not resources/<group>/<version>/<resource>/<namespace|_cluster>/<name>.json")
)

// parseEntryName is the inverse of entryName. The result has no Kind.
func parseEntryName(name string) (ItemRef, error) {
	if strings.HasPrefix(name, "/") {
		return ItemRef{}, errAbsolutePath
	}
	segs := strings.Split(name, "/")
	for _, s := range segs {
		if s == ".." {
			return ItemRef{}, errPathEscapes
		}
	}
	for _, s := range segs {
		if s == "" || s == "." {
			return ItemRef{}, errPathUnclean
		}
	}
	if len(segs) != 6 || segs[0] != entryRoot || !strings.HasSuffix(segs[5], entryExt) {
		return ItemRef{}, errPathShape
	}
	ref := ItemRef{Group: segs[1], Version: segs[2], Resource: segs[3], Namespace: segs[4], Name: strings.TrimSuffix(segs[5], entryExt)}
	switch {
	case ref.Group == coreGroupDir:
		ref.Group = ""
	case ref.Group == "":
		return ItemRef{}, errPathShape
	}
	switch {
	case ref.Namespace == clusterScopeDir:
		ref.Namespace = ""
	case ref.Namespace == "":
		return ItemRef{}, errPathShape
	}
	if err := ref.validate(false); err != nil {
		return ItemRef{}, err
	}
	return ref, nil
}

// checkObject checks that obj is a JSON object whose identity is ref. It
// looks keys up case-sensitively, as the API server does, so that what it
// checks is what a restore applies; for a key given twice, the last counts.
func checkObject(ref ItemRef, obj []byte) error {
	if !json.Valid(obj) {
		var v any
		err := json.Unmarshal(obj, &v) // for the message
		return fmt.Errorf("object is not a JSON object: %v", err)
	}
	id, err := identityOf(obj)
	if err != nil {
		return err
	}
	for _, f := range []struct{ field, got, want string }{
		{"apiVersion", id.apiVersion, ref.apiVersion()},
		{"kind", id.kind, ref.Kind},
		{"metadata.name", id.name, ref.Name},
		{"metadata.namespace", id.namespace, ref.Namespace},
	} {
		if f.got != f.want {
			return fmt.Errorf("object's %s is %q, want %q", f.field, f.got, f.want)
		}
	}
	return nil
}

// identity is what checkObject compares; a missing or null field is "".
type identity struct{ apiVersion, kind, name, namespace string }

// identityOf reads the identity of a valid JSON document in one pass that
// skips everything else; encoding/json would decode all of it.
func identityOf(b []byte) (identity, error) {
	var id identity
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return id, errors.New("object is not a JSON object")
	}
	err := eachMember(b, i, func(key string, j int) (int, error) {
		var err error
		switch key {
		case "apiVersion":
			id.apiVersion, j, err = stringValue(b, j, "apiVersion")
		case "kind":
			id.kind, j, err = stringValue(b, j, "kind")
		case "metadata":
			id.name, id.namespace = "", ""
			switch b[j] {
			case 'n':
				return skipValue(b, j), nil
			case '{':
				err := eachMember(b, j, func(key string, k int) (int, error) {
					var err error
					switch key {
					case "name":
						id.name, k, err = stringValue(b, k, "metadata.name")
					case "namespace":
						id.namespace, k, err = stringValue(b, k, "metadata.namespace")
					default:
						k = skipValue(b, k)
					}
					return k, err
				})
				return skipValue(b, j), err
			default:
				return j, errors.New("object's metadata is not a JSON object")
			}
		default:
			j = skipValue(b, j)
		}
		return j, err
	})
	return id, err
}

// eachMember calls fn with each key of the object at b[i] and the index of
// its value; fn returns the index after the value. b must be valid JSON.
func eachMember(b []byte, i int, fn func(key string, value int) (int, error)) error {
	i = skipSpace(b, i+1) // past '{'
	for b[i] != '}' {
		end := skipValue(b, i)
		key, err := unquote(b[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(b, skipSpace(b, end)+1) // past ':'
		if i, err = fn(key, i); err != nil {
			return err
		}
		if i = skipSpace(b, i); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// stringValue reads the string or null at b[i].
func stringValue(b []byte, i int, field string) (string, int, error) {
	end := skipValue(b, i)
	switch b[i] {
	case 'n':
		return "", end, nil
	case '"':
		s, err := unquote(b[i:end])
		return s, end, err
	}
	return "", end, fmt.Errorf("object's %s is not a string", field)
}

func unquote(quoted []byte) (string, error) {
	if bytes.IndexByte(quoted, '\\') < 0 && utf8.Valid(quoted) {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var s string
	err := json.Unmarshal(quoted, &s)
	return s, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 { // the end of the enclosing container: a literal ended
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// Level is how bad a log line is.
type Level string

// Log levels. Warnings and errors are counted in backup.json.
const (
	LevelInfo    Level = "info"
	LevelWarning Level = "warning"
	LevelError   Level = "error"
)

// LogEntry is one line of log.jsonl.gz.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   Level     `json:"level"`
	Item    *ItemRef  `json:"item,omitempty"`
	Message string    `json:"message"`
}
