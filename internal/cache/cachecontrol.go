package cache

import (
	"net/http"
	"strings"
	"time"
)

// maxDelta is the largest delta-seconds value holdfast keeps: RFC 9111
// section 1.2.2 asks a recipient to read any larger number (and any
// number that overflows) as 2^31 seconds.
const maxDelta = time.Duration(1<<31) * time.Second

// Directive is one cache directive as received: a lower-cased name and
// its argument, unquoted, or "" when it had none.
type Directive struct {
	Name, Value string
	HasValue    bool
}

// CacheControl is a parsed Cache-Control field. Its zero value has no
// directives. It is read-only once parsed and safe for concurrent use.
type CacheControl struct {
	list []Directive
	// conflict names directives that appeared more than once with
	// different arguments: RFC 9111 4.2.1 lets a cache read such a
	// message as stale, the most conservative reading, which is what the
	// duration getters do.
	conflict map[string]bool
}

// ParseCacheControl parses every Cache-Control field line of h as one
// comma-separated list (RFC 9111 5.2). Names are case-insensitive;
// arguments may be tokens or quoted strings. Malformed members are
// skipped rather than failing the whole field.
func ParseCacheControl(h http.Header) CacheControl {
	return parseCacheControl(strings.Join(h.Values("Cache-Control"), ","))
}

func parseCacheControl(s string) CacheControl {
	var cc CacheControl
	for i := 0; i < len(s); {
		// Name: up to '=' or ','.
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ',' {
			j++
		}
		name := strings.ToLower(trimOWS(s[i:j]))
		d := Directive{Name: name}
		i = j
		if i < len(s) && s[i] == '=' {
			d.HasValue = true
			i++
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i < len(s) && s[i] == '"' {
				var b strings.Builder
				i++
				for i < len(s) && s[i] != '"' {
					if s[i] == '\\' && i+1 < len(s) {
						i++
					}
					b.WriteByte(s[i])
					i++
				}
				d.Value = b.String()
				// Skip the closing quote and anything up to the next
				// comma: junk after a quoted string is not part of it.
				for i < len(s) && s[i] != ',' {
					i++
				}
			} else {
				j := i
				for j < len(s) && s[j] != ',' {
					j++
				}
				d.Value = trimOWS(s[i:j])
				i = j
			}
		}
		if i < len(s) && s[i] == ',' {
			i++
		}
		if !isToken(name) {
			continue
		}
		cc.add(d)
	}
	return cc
}

func (cc *CacheControl) add(d Directive) {
	for _, old := range cc.list {
		if old.Name == d.Name && (old.Value != d.Value || old.HasValue != d.HasValue) {
			if cc.conflict == nil {
				cc.conflict = make(map[string]bool)
			}
			cc.conflict[d.Name] = true
		}
	}
	cc.list = append(cc.list, d)
}

// Directives returns the parsed directives in the order received,
// duplicates included. The caller must not modify the slice.
func (cc CacheControl) Directives() []Directive { return cc.list }

// Has reports whether the directive name (lower case) is present.
func (cc CacheControl) Has(name string) bool {
	_, ok := cc.Get(name)
	return ok
}

// Get returns the argument of the first directive called name (lower
// case) and whether it is present.
func (cc CacheControl) Get(name string) (string, bool) {
	for _, d := range cc.list {
		if d.Name == name {
			return d.Value, true
		}
	}
	return "", false
}

// Seconds returns the delta-seconds argument of directive name and
// whether the directive is present. A present directive whose argument
// is missing, malformed or given twice with different values reads as
// 0, the conservative value for every duration directive but min-fresh
// (which the callers handle). Values past 2^31 are capped there.
func (cc CacheControl) Seconds(name string) (time.Duration, bool) {
	v, ok := cc.Get(name)
	if !ok {
		return 0, false
	}
	if cc.conflict[name] {
		return 0, true
	}
	d, valid := parseDelta(v)
	if !valid {
		return 0, true
	}
	return d, true
}

// valid reports whether directive name is present with a well-formed,
// unambiguous delta-seconds argument.
func (cc CacheControl) valid(name string) bool {
	v, ok := cc.Get(name)
	if !ok || cc.conflict[name] {
		return false
	}
	_, valid := parseDelta(v)
	return valid
}

// String formats the directives back into a field value, quoting
// arguments that are not tokens.
func (cc CacheControl) String() string {
	var b strings.Builder
	for i, d := range cc.list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Name)
		if !d.HasValue {
			continue
		}
		b.WriteByte('=')
		if isToken(d.Value) {
			b.WriteString(d.Value)
			continue
		}
		b.WriteByte('"')
		for k := 0; k < len(d.Value); k++ {
			if c := d.Value[k]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(d.Value[k])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// parseDelta parses delta-seconds (1*DIGIT), capping at 2^31 seconds.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<31 {
			n = n*10 + int64(c-'0')
		}
	}
	if n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
