package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The decoder walks yaml.v3's node tree itself instead of calling
// yaml.Unmarshal: Unmarshal stops at the first type error, reports unknown
// keys without their path, and cannot tell an absent key from a zero one.
// Walking the nodes gives every error a line, a column and a dotted key, and
// lets every problem in a file be reported at once.
//
// Keys come from the structs' yaml tags, so a field added to types.go is
// decoded without touching this file; only its validation is written by hand.

// maxNodes bounds the nodes visited in one file, so that a few lines of
// nested aliases (a "billion laughs" document) cannot make Parse run for
// ever. Real configurations visit a few thousand.
const maxNodes = 1 << 20

// maxMergeDepth bounds "<<" merge keys that merge mappings that merge
// mappings, which is also how a cycle of merges would show.
const maxMergeDepth = 10

// unit says how a number is written: the Go type alone does not tell a
// byte size from a count, or a percentage from a rate.
type unit int

const (
	unitNone    unit = iota
	unitSize         // int64 bytes: "64KiB", "10MiB", 1024
	unitPercent      // float64 from 0 to 100: 20 or "20%"
)

// unitOf returns the unit of a key. Every size and percentage key is listed
// here.
func unitOf(key string) unit {
	switch key {
	case "body_buffer", "max_header_bytes", "max_body_bytes", "max_size", "max_object", "buffer":
		return unitSize
	case "budget", "max_ejected_percent", "error_percent":
		return unitPercent
	}
	return unitNone
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	upstreamsType = reflect.TypeFor[[]*Upstream]()
)

// decoder holds the state of one Parse call.
type decoder struct {
	file   string
	dir    string                // absolute directory relative paths are resolved against
	errs   []*Error              // every problem, in the order found
	nodes  map[string]*yaml.Node // the value node of every key or list item present, by dotted path
	keys   map[string]*yaml.Node // the key node of every key present, by dotted path
	bad    map[string]bool       // paths whose value could not be decoded: validation skips them
	budget int                   // nodes still allowed to be visited
}

// parseYAML parses data as one YAML document and returns the node of its
// top-level value, or nil after recording the syntax error.
func (d *decoder) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, &Error{File: d.file, Line: 1, Col: 1,
				Msg: "the file is empty: want at least listen, routes and upstreams"})
			return nil
		}
		d.syntaxError(err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err)
		return nil
	default:
		d.errs = append(d.errs, &Error{File: d.file, Line: extra.Line, Col: extra.Column,
			Msg: `a second YAML document ("---") is not allowed: put everything in one`})
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1, Col: 1, Msg: "the file holds no YAML document"})
		return nil
	}
	return doc.Content[0]
}

// yamlLine finds the line yaml.v3 puts in the text of its syntax errors.
var yamlLine = regexp.MustCompile(`^line (\d+): `)

func (d *decoder) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: "invalid YAML: " + msg, Err: err})
}

// errorf records a problem at node n.
func (d *decoder) errorf(n *yaml.Node, path string, err error, format string, args ...any) {
	e := &Error{File: d.file, Key: path, Msg: fmt.Sprintf(format, args...), Err: err}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// badValue records that the value at path could not be decoded, so that
// validation does not report the default left in its place.
func (d *decoder) badValue(n *yaml.Node, path string, err error, format string, args ...any) {
	d.bad[path] = true
	d.errorf(n, path, err, format, args...)
}

// visit resolves aliases and charges the node budget. It returns nil once
// the budget is spent.
func (d *decoder) visit(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.budget--
	if d.budget < 0 {
		if d.budget == -1 {
			d.errorf(n, "", nil, "the document is too large once its aliases are expanded (more than %d nodes)", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode writes the value of node n into v. A null value leaves v as it is:
// absent and null keys keep their defaults.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value, u unit) {
	at := n
	if n = d.visit(n); n == nil || isNull(n) {
		return
	}
	d.nodes[path] = at
	t := v.Type()
	switch {
	case t == durationType:
		d.scalar(n, path, v, u)
	case t == upstreamsType:
		d.upstreams(n, path, v)
	case t.Kind() == reflect.Struct:
		d.mapping(n, path, v)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.typeError(n, path, t, u)
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
			setDefaults(v.Interface())
		}
		d.mapping(n, path, v.Elem())
	case t.Kind() == reflect.Map:
		d.stringMap(n, path, v)
	case t.Kind() == reflect.Pointer:
		// A fresh pointer, set only on success, so that a bad value leaves
		// the default in place and no default is shared.
		p := reflect.New(t.Elem())
		if d.scalar(n, path, p.Elem(), u) {
			v.Set(p)
		}
	case t.Kind() == reflect.Slice:
		d.sequence(n, path, v, u)
	default:
		d.scalar(n, path, v, u)
	}
}

// fields returns the YAML keys of struct type t in declaration order and the
// field index of each.
func fields(t reflect.Type) (keys []string, index map[string]int) {
	index = make(map[string]int)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		index[name] = i
	}
	return keys, index
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, t, unitNone)
		return
	}
	keys, index := fields(t)
	for _, kv := range d.pairs(n, path, 0) {
		name := kv.key.Value
		i, ok := index[name]
		if !ok {
			d.unknownKey(kv.key, path, t, name, keys)
			continue
		}
		d.keys[join(path, name)] = kv.key
		d.decode(kv.val, join(path, name), v.Field(i), unitOf(name))
	}
	if f, ok := t.FieldByName("Line"); ok && f.Type.Kind() == reflect.Int {
		v.FieldByIndex(f.Index).SetInt(int64(n.Line))
	}
}

// upstreams decodes the mapping of pool names to pools, keeping file order.
func (d *decoder) upstreams(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.SequenceNode {
			d.badValue(n, path, nil, "want a mapping of pool names to pools, not a list: write \"api: {servers: [...]}\"")
			return
		}
		d.typeError(n, path, v.Type(), unitNone)
		return
	}
	var pools []*Upstream
	for _, kv := range d.pairs(n, path, 0) {
		p := join(path, kv.key.Value)
		u := new(Upstream)
		setDefaults(u)
		d.decode(kv.val, p, reflect.ValueOf(u).Elem(), unitNone)
		u.Name = kv.key.Value
		u.Line = kv.key.Line
		// Problems with a whole pool point at its name.
		d.nodes[p] = kv.key
		pools = append(pools, u)
	}
	v.Set(reflect.ValueOf(pools))
}

// stringMap decodes a mapping of strings to strings (header fields).
func (d *decoder) stringMap(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, t, unitNone)
		return
	}
	m := reflect.MakeMap(t)
	for _, kv := range d.pairs(n, path, 0) {
		p := join(path, kv.key.Value)
		d.keys[p] = kv.key
		val := d.visit(kv.val)
		if val == nil {
			continue
		}
		d.nodes[p] = kv.val
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.typeError(val, p, t.Elem(), unitNone)
			continue
		}
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

// sequence decodes a list. Every item is kept, even one that failed, so that
// list indexes in paths stay those of the file.
func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value, u unit) {
	t := v.Type()
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, path, t, u)
		return
	}
	out := reflect.MakeSlice(t, 0, len(n.Content))
	for i, item := range n.Content {
		e := reflect.New(t.Elem())
		setDefaults(e.Interface())
		d.decode(item, fmt.Sprintf("%s[%d]", path, i), e.Elem(), u)
		out = reflect.Append(out, e.Elem())
	}
	v.Set(out)
}

// scalar decodes a scalar node into v and reports whether it could.
func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value, u unit) bool {
	t := v.Type()
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, t, u)
		return false
	}
	tag := n.ShortTag()
	switch {
	case t == durationType:
		if tag != "!!str" && tag != "!!int" && tag != "!!float" {
			d.typeError(n, path, t, u)
			return false
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.badValue(n, path, err, "want %s: %v", want(t, u), err)
			return false
		}
		v.SetInt(int64(dur))
	case t.Kind() == reflect.String:
		v.SetString(n.Value)
	case t.Kind() == reflect.Bool:
		if tag != "!!bool" {
			d.typeError(n, path, t, u)
			return false
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		var i int64
		switch {
		case tag == "!!int":
			if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
				d.badValue(n, path, nil, "%s is too large", n.Value)
				return false
			}
			if u == unitSize && i < 0 {
				d.badValue(n, path, nil, "want %s: size %s is negative", want(t, u), n.Value)
				return false
			}
		case tag == "!!str" && u == unitSize:
			var err error
			if i, err = ParseSize(n.Value); err != nil {
				d.badValue(n, path, err, "want %s: %v", want(t, u), err)
				return false
			}
		default:
			d.typeError(n, path, t, u)
			return false
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		var f float64
		switch {
		case u == unitPercent && (tag == "!!str" || tag == "!!int" || tag == "!!float"):
			var err error
			if f, err = parsePercent(n.Value); err != nil {
				if tag != "!!str" {
					// yaml.v3 reads 0x10 and 1_000 too; let it.
					if n.Decode(&f) == nil && f >= 0 && f <= 100 {
						break
					}
				}
				d.badValue(n, path, err, "want %s: %v", want(t, u), err)
				return false
			}
		case tag == "!!int" || tag == "!!float":
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.badValue(n, path, nil, "want %s, got %s", want(t, u), n.Value)
				return false
			}
			if f < 0 {
				d.badValue(n, path, nil, "want %s, got %s: it cannot be negative", want(t, u), n.Value)
				return false
			}
		default:
			d.typeError(n, path, t, u)
			return false
		}
		v.SetFloat(f)
	default:
		// Only a field of a new type added to types.go without teaching the
		// decoder about it can get here.
		d.badValue(n, path, nil, "internal error: the decoder cannot set a %s", t)
		return false
	}
	return true
}

func (d *decoder) typeError(n *yaml.Node, path string, t reflect.Type, u unit) {
	d.badValue(n, path, nil, "want %s, got %s", want(t, u), describe(n))
}

// want says in words what a value of type t (written in unit u) looks like.
func want(t reflect.Type, u unit) string {
	switch {
	case t == durationType:
		return "a duration like 5s or 250ms"
	case u == unitSize:
		return "a size like 64KiB, 10MiB or 1024"
	case u == unitPercent:
		return `a percentage like 20 or "20%"`
	case t == upstreamsType:
		return "a mapping of pool names to pools"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return want(t.Elem(), u)
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.String:
			return "a list like [a, b]"
		case reflect.Struct:
			keys, _ := fields(t.Elem())
			return "a list of mappings with keys " + strings.Join(keys, ", ")
		}
		return "a list"
	case reflect.Struct:
		keys, _ := fields(t)
		return "a mapping with keys " + strings.Join(keys, ", ")
	case reflect.Map:
		return "a mapping of names to strings"
	}
	return t.String()
}

// describe says in words what node n holds.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}

// perServer are the keys that nginx users put in an upstream block but that
// belong to each server here.
func perServer(key string) bool {
	switch key {
	case "weight", "max_fails", "fail_timeout", "backup", "url":
		return true
	}
	return false
}

func (d *decoder) unknownKey(k *yaml.Node, path string, t reflect.Type, name string, keys []string) {
	if t == reflect.TypeFor[Upstream]() && perServer(name) {
		d.errorf(k, path, nil, "unknown key %q (%s is set on each server, under servers; valid: %s)",
			name, name, strings.Join(keys, ", "))
		return
	}
	d.errorf(k, path, nil, "unknown key %q%s", name, choices(name, keys, "valid"))
}

// pair is one key and its value in a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n in file order, reporting keys that
// are not strings or appear twice, and expanding "<<" merge keys: entries of
// the mapping itself win over merged ones, and earlier merged mappings over
// later ones, as in YAML 1.1.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	first := make(map[string]*yaml.Node)
	keys := make([]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.visit(n.Content[i])
		if k == nil {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, nil, "want a plain string as a key, got %s", describe(k))
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.errorf(k, path, nil, "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		first[k.Value] = k
		keys[i/2] = k
	}
	var out []pair
	merged := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			for _, p := range d.merge(val, path, depth) {
				if first[p.key.Value] == nil && !merged[p.key.Value] {
					merged[p.key.Value] = true
					out = append(out, p)
				}
			}
			continue
		}
		if keys[i/2] != nil {
			out = append(out, pair{keys[i/2], val})
		}
	}
	return out
}

// merge returns the entries a "<<" key brings in: those of a mapping, or of
// a list of mappings.
func (d *decoder) merge(val *yaml.Node, path string, depth int) []pair {
	at := val
	if val = d.visit(val); val == nil {
		return nil
	}
	if depth >= maxMergeDepth {
		d.errorf(at, path, nil, "merge keys (<<) nested too deeply")
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			m := d.visit(item)
			if m == nil {
				return out
			}
			if m.Kind != yaml.MappingNode {
				d.errorf(item, path, nil, "<<: want a mapping or a list of mappings to merge, got %s", describe(m))
				continue
			}
			out = append(out, d.pairs(m, path, depth+1)...)
		}
		return out
	}
	d.errorf(at, path, nil, "<<: want a mapping or a list of mappings to merge, got %s", describe(val))
	return nil
}
