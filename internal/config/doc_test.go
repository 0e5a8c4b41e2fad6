package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docKey is one row of a reference table in docs/configuration.md.
type docKey struct {
	path, def string
	line      int
}

var docRow = regexp.MustCompile("^\\| `([^`]+)` \\|[^|]*\\| ([^|]*) \\|")

// readDocKeys reads the key and default columns of the reference tables.
func readDocKeys(t *testing.T) []docKey {
	t.Helper()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var keys []docKey
	for i, line := range strings.Split(string(data), "\n") {
		if m := docRow.FindStringSubmatch(line); m != nil {
			keys = append(keys, docKey{path: m[1], def: strings.TrimSpace(m[2]), line: i + 1})
		}
	}
	return keys
}

// schemaEntry is one key of the configuration with its default.
type schemaEntry struct {
	value reflect.Value // the default
	leaf  bool
}

// schema lists every key path as the reference writes it ("listen[].addr",
// "upstreams.NAME.retry.on") with its default, by walking the structs.
func schema() map[string]schemaEntry {
	out := make(map[string]schemaEntry)
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		t := v.Type()
		switch {
		case t == durationType:
		case t == upstreamsType:
			out[path] = schemaEntry{value: v}
			u := new(Upstream)
			setDefaults(u)
			walk(path+".NAME", reflect.ValueOf(u).Elem())
			return
		case t.Kind() == reflect.Struct:
			if path != "" {
				out[path] = schemaEntry{value: v}
			}
			keys, index := fields(t)
			for _, k := range keys {
				walk(join(path, k), v.Field(index[k]))
			}
			return
		case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
			out[path] = schemaEntry{value: v}
			e := reflect.New(t.Elem())
			setDefaults(e.Interface())
			walk(path, e.Elem())
			return
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			out[path] = schemaEntry{value: v}
			e := reflect.New(t.Elem())
			setDefaults(e.Interface())
			walk(path+"[]", e.Elem())
			return
		}
		out[path] = schemaEntry{value: v, leaf: true}
	}
	walk("", reflect.ValueOf(newConfig("")).Elem())
	return out
}

// TestDocumentedDefaults holds docs/configuration.md to the code: every key
// is documented, every documented key exists, and every default written in
// the reference decodes to the default the code applies.
func TestDocumentedDefaults(t *testing.T) {
	docs := readDocKeys(t)
	keys := schema()
	documented := make(map[string]bool)
	for _, k := range docs {
		documented[k.path] = true
		e, ok := keys[k.path]
		if !ok {
			t.Errorf("docs line %d: %s is not a configuration key", k.line, k.path)
			continue
		}
		if !e.leaf {
			continue
		}
		if k.def == "—" {
			if !e.value.IsZero() {
				t.Errorf("docs line %d: %s has no default in the docs, but the code's is %v", k.line, k.path, reflect.Indirect(e.value))
			}
			continue
		}
		m := regexp.MustCompile("^`([^`]*)`$").FindStringSubmatch(k.def)
		if m == nil {
			t.Errorf("docs line %d: %s: default %q is neither — nor one `value`", k.line, k.path, k.def)
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(m[1]), &doc); err != nil {
			t.Errorf("docs line %d: %s: default %q: %v", k.line, k.path, m[1], err)
			continue
		}
		d := &decoder{nodes: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, bad: map[string]bool{}, budget: maxNodes}
		got := reflect.New(e.value.Type()).Elem()
		last := k.path[strings.LastIndexAny(k.path, ".]")+1:]
		d.decode(doc.Content[0], k.path, got, unitOf(last))
		if len(d.errs) > 0 {
			t.Errorf("docs line %d: %s: default %q: %v", k.line, k.path, m[1], d.errs[0])
			continue
		}
		if !reflect.DeepEqual(reflect.Indirect(got).Interface(), reflect.Indirect(e.value).Interface()) {
			t.Errorf("docs line %d: %s: documented default %s, code's %v", k.line, k.path, m[1], reflect.Indirect(e.value))
		}
	}
	var missing []string
	for p, e := range keys {
		if e.leaf && !documented[p] {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	for _, p := range missing {
		t.Errorf("docs/configuration.md does not document %s", p)
	}
}

// TestDocumentedExample checks that the annotated example in the reference
// loads, and means the same as the reference configuration in the tests.
func TestDocumentedExample(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), "## An annotated example")
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	got, err := Load(writeConfig(t, example))
	if err != nil {
		t.Fatalf("the documented example does not load:\n%v", err)
	}
	want, err := Load(writeConfig(t, specExample))
	if err != nil {
		t.Fatal(err)
	}
	// Only the directories of the files differ.
	got.File, want.File = "", ""
	got.Listen[1].TLS, want.Listen[1].TLS = nil, nil
	got.Admin.TokenFile, want.Admin.TokenFile = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the documented example differs from the reference configuration:\n%+v\n%+v", got, want)
	}
}
