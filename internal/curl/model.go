// Package curl parses curl command lines, as a shell would split them, into
// one request model that the code generators share.
//
// Parse reads shell text (quotes, $'...', line continuations, $VAR, comments,
// several commands); ParseArgs reads an argument list that a shell has
// already split. Neither runs anything: $(...) and file reads are left to the
// generated program, or reported as warnings.
package curl

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pos is a position in the parsed source, 1-based. The zero Pos means
// "unknown", as for arguments given by ParseArgs.
type Pos struct {
	Line, Col int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return "-"
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

// Segment is one piece of a Text: a literal string; or, when Env is set,
// the value of that environment variable read by the generated program;
// or, when File is set, the contents of that file, read by the program
// when it runs ("-" is its standard input), as --data-urlencode name@file
// and --url-query @file read it. At most one of Env and File is set.
type Segment struct {
	Lit string
	Env string
	// File is a file whose whole contents, bytes as they are, the
	// program reads when it runs.
	File string
	// Encode, with Env or File, says that the value is percent-encoded
	// when the program runs, as curl's --data-urlencode encodes (see
	// Escape): every byte but ASCII letters, digits and -._~ as %XX with
	// upper-case hex digits, a space as '+'.
	Encode bool
}

// IsLit reports whether s is a literal string: neither a variable nor a
// file.
func (s Segment) IsLit() bool { return s.Env == "" && s.File == "" }

// Text is a string that may embed environment variable reads, as
// "Bearer $TOKEN" does. The zero Text is the empty string.
type Text []Segment

// Lit returns s as a Text without variables.
func Lit(s string) Text {
	if s == "" {
		return nil
	}
	return Text{{Lit: s}}
}

// IsLiteral reports whether t reads no environment variable and no file.
func (t Text) IsLiteral() bool {
	for _, s := range t {
		if !s.IsLit() {
			return false
		}
	}
	return true
}

// String renders t for a person to read: variables as ${NAME}, a file's
// contents as $(<FILE), an encoded value wrapped in urlencode(...).
func (t Text) String() string {
	var b strings.Builder
	for _, s := range t {
		v := s.Lit
		switch {
		case s.Env != "":
			v = "${" + s.Env + "}"
		case s.File != "":
			v = "$(<" + s.File + ")"
		}
		if s.Encode && !s.IsLit() {
			v = "urlencode(" + v + ")"
		}
		b.WriteString(v)
	}
	return b.String()
}

// Value returns t with each variable replaced by getenv(name), encoded
// where the segment says so. A file's contents, which only the program
// reads, are left out.
func (t Text) Value(getenv func(string) string) string {
	var b strings.Builder
	for _, s := range t {
		switch {
		case s.Env != "" && s.Encode:
			b.WriteString(Escape(getenv(s.Env)))
		case s.Env != "":
			b.WriteString(getenv(s.Env))
		case s.File == "":
			b.WriteString(s.Lit)
		}
	}
	return b.String()
}

// Files returns the files t reads, in order, without repeats.
func (t Text) Files() []string {
	var out []string
	for _, s := range t {
		if s.File != "" && !contains(out, s.File) {
			out = append(out, s.File)
		}
	}
	return out
}

// Encodes reports whether t has a segment encoded when the program runs.
func (t Text) Encodes() bool {
	for _, s := range t {
		if s.Encode && !s.IsLit() {
			return true
		}
	}
	return false
}

// Vars returns the names of the variables t reads, in order, without repeats.
func (t Text) Vars() []string {
	var out []string
	for _, s := range t {
		if s.Env != "" && !contains(out, s.Env) {
			out = append(out, s.Env)
		}
	}
	return out
}

// Cut splits t around the first sep found inside a literal segment.
func (t Text) Cut(sep string) (before, after Text, found bool) {
	for i, s := range t {
		if !s.IsLit() {
			continue
		}
		if b, a, ok := strings.Cut(s.Lit, sep); ok {
			before = append(append(Text{}, t[:i]...), Lit(b)...)
			after = append(Lit(a), t[i+1:]...)
			return before.norm(), after.norm(), true
		}
	}
	return t, nil, false
}

// HasLitPrefix reports whether t starts with the literal p.
func (t Text) HasLitPrefix(p string) bool {
	return len(t) > 0 && t[0].IsLit() && strings.HasPrefix(t[0].Lit, p) || p == ""
}

// TrimLitPrefix removes the literal prefix p, if t starts with it.
func (t Text) TrimLitPrefix(p string) Text {
	if !t.HasLitPrefix(p) || p == "" {
		return t
	}
	out := append(Text{{Lit: t[0].Lit[len(p):]}}, t[1:]...)
	return out.norm()
}

// ContainsLit reports whether a literal segment of t contains s.
func (t Text) ContainsLit(s string) bool {
	for _, seg := range t {
		if seg.IsLit() && strings.Contains(seg.Lit, s) {
			return true
		}
	}
	return false
}

// Concat joins texts into one.
func Concat(ts ...Text) Text {
	var out Text
	for _, t := range ts {
		out = append(out, t...)
	}
	return out.norm()
}

// JoinText joins texts with the literal sep between them.
func JoinText(ts []Text, sep string) Text {
	var out Text
	for i, t := range ts {
		if i > 0 {
			out = append(out, Segment{Lit: sep})
		}
		out = append(out, t...)
	}
	return out.norm()
}

// norm merges adjacent literals and drops empty ones.
func (t Text) norm() Text {
	var out Text
	for _, s := range t {
		if s.IsLit() && s.Lit == "" {
			continue
		}
		if n := len(out); n > 0 && s.IsLit() && out[n-1].IsLit() {
			out[n-1].Lit += s.Lit
			continue
		}
		out = append(out, s)
	}
	return out
}

// Header is one request header, in the order the command gave it.
type Header struct {
	Name  string
	Value Text
}

// BodyKind says how a request body was given.
type BodyKind int

// The body kinds. BodyNone is the zero value.
const (
	BodyNone       BodyKind = iota
	BodyRaw                 // bytes as given, with a Content-Type header of the command's choosing
	BodyURLEncoded          // -d and friends: application/x-www-form-urlencoded
	BodyJSON                // --json
	BodyMultipart           // -F: multipart/form-data
	BodyFile                // the contents of a file (-d @file, --data-binary @file, -T file)
)

func (k BodyKind) String() string {
	switch k {
	case BodyRaw:
		return "raw"
	case BodyURLEncoded:
		return "urlencoded"
	case BodyJSON:
		return "json"
	case BodyMultipart:
		return "multipart"
	case BodyFile:
		return "file"
	}
	return "none"
}

// FormPart is one -F field. Exactly one of Value and File is meaningful:
// File set means a file upload (name=@file), or with FileAsValue the file's
// contents sent as a plain field (name=<file).
type FormPart struct {
	Name        string
	Value       Text
	File        Text
	FileAsValue bool
	Filename    string // overrides the upload's file name when set
	ContentType string // the part's Content-Type when set
}

// Body is the request body. The zero Body is no body.
type Body struct {
	Kind BodyKind
	// Data is the body for BodyRaw, BodyURLEncoded and BodyJSON.
	Data Text
	// File is the file to send for BodyFile; "-" is standard input.
	File Text
	// StripNewlines is set for a BodyFile from -d @file (or -d @- with
	// the program's own standard input): the generated code drops CR and
	// LF from the file as curl does. Data the parser knows (a here-string
	// or here-document fed to -d @-) is stripped already, and this is false.
	StripNewlines bool
	// Parts are the fields of BodyMultipart, in order.
	Parts []FormPart
}

// Auth is HTTP Basic authentication from -u: the credentials are
// User + ":" + Password. -u "$CREDS", a value that reads a variable and has
// no literal ':', is split by curl at the first ':' of the expanded value:
// it becomes User ${CREDS}, an empty Password and SplitAtRunTime.
type Auth struct {
	User, Password Text
	// SplitAtRunTime: User holds user:password, to be split at the first
	// ':' when the program runs; no ':' means the whole value is the user
	// and the password is empty. Password is then empty.
	SplitAtRunTime bool
	// Digest is --digest: HTTP Digest authentication (RFC 7616) instead
	// of Basic. As curl does, the program first sends the request without
	// credentials and with an empty body (Content-Length: 0, no form
	// Content-Type), and answers a 401 with a Digest challenge by sending
	// it again, whole, with the Authorization the challenge asks for
	// (MD5, MD5-sess, SHA-256 or SHA-256-sess; qop "auth" when offered).
	// A response other than that 401 is the request's response, except
	// that a success (2xx) to the probe of a request with a body makes
	// curl send the request again, whole and without credentials, as the
	// body never went.
	Digest bool
}

// Proxy is a proxy the request goes through. URL has a scheme: http,
// https, socks4, socks4a, socks5 or socks5h (a URL without one is http,
// as in curl). User and Password, from -U, are sent to the proxy (Basic
// authentication, or SOCKS5's username and password); both empty means
// none.
type Proxy struct {
	URL            Text
	User, Password Text
}

// Retry holds curl's own retry options, as given. Zero values mean the
// option was absent.
type Retry struct {
	Count       int           // --retry
	CountSet    bool          // --retry was given (it may be 0)
	Delay       time.Duration // --retry-delay
	MaxTime     time.Duration // --retry-max-time
	ConnRefused bool          // --retry-connrefused
	AllErrors   bool          // --retry-all-errors
	// Pos is where --retry was given, for a warning about it; zero when
	// it was not, or came from ParseArgs.
	Pos Pos
}

// Request is one HTTP request that a curl command makes. Its zero value is
// not useful; Parse and ParseArgs fill it in.
type Request struct {
	// Pos is where the curl command starts in the source.
	Pos Pos
	// Method is the HTTP method: curl's choice, in upper case, or -X's
	// value verbatim ("-X post" sends "post": methods are case-sensitive).
	Method string
	// MethodExplicit is set when -X chose the method.
	MethodExplicit bool
	// URL is the full URL, query included (from the URL itself, -G data
	// and --url-query). A URL without a scheme gets http://, as curl does.
	URL Text
	// Headers in command order, then those curl adds for -A, -e, -b,
	// --json, --oauth2-bearer and data, unless the command set them.
	Headers []Header
	Body    Body
	// Auth is Basic authentication; nil when -u was not given.
	Auth *Auth
	// Insecure is -k: TLS certificates are not verified.
	Insecure bool
	// FollowRedirects is -L.
	FollowRedirects bool
	// MaxRedirects is --max-redirs; 0 means the default (curl: 50).
	MaxRedirects int
	// Compressed is --compressed: ask for and decode compressed bodies.
	Compressed bool
	// Output is -o: the file the body is written to; empty means stdout.
	Output string
	// MaxTime is --max-time, per attempt; 0 means no limit.
	MaxTime time.Duration
	// ConnectTimeout is --connect-timeout; 0 means the default.
	ConnectTimeout time.Duration
	// Retry is curl's retry options.
	Retry Retry
	// Proxy is the proxy of -x/--proxy (or --socks5, --socks5-hostname)
	// with the credentials of -U/--proxy-user; nil when there is none.
	Proxy *Proxy
	// CookieFiles are the files -b reads cookies from (a -b value without
	// '='), in command order. The program reads them when it runs, in
	// curl's Netscape format, and sends the cookies that match the
	// request as curl does; see docs/convert.md.
	CookieFiles []string
	// CookieJar is -c/--cookie-jar: the file the program writes, when the
	// request is done, with every cookie it holds (those read from
	// CookieFiles and those the responses set), in curl's Netscape format;
	// see docs/convert.md. Empty: none.
	CookieJar string
	// Warnings are options and shell features that were not converted.
	Warnings []Warning
}

// Header returns the value of the last header named name (case-insensitive).
func (r *Request) Header(name string) (Text, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if strings.EqualFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// HasIdempotencyKey reports whether the command sends an Idempotency-Key
// (or X-Idempotency-Key) header that makes a POST or PATCH safe to retry:
// one with a non-empty literal value. A key read from an environment
// variable does not count, since the variable may be empty or unset when
// the program runs, and an empty key lets no server deduplicate.
func (r *Request) HasIdempotencyKey() bool {
	for _, name := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		if v, ok := r.Header(name); ok && v.IsLiteral() && strings.TrimSpace(v.String()) != "" {
			return true
		}
	}
	return false
}

// Idempotent reports whether the method may be sent twice without harm
// (RFC 9110 section 9.2.2). Methods are case-sensitive (section 9.1):
// "put" is not PUT, and, like methods curl users invent, is not idempotent.
func (r *Request) Idempotent() bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// Vars returns the environment variables the request reads, in order.
func (r *Request) Vars() []string {
	var out []string
	add := func(t Text) {
		for _, v := range t.Vars() {
			if !contains(out, v) {
				out = append(out, v)
			}
		}
	}
	add(r.URL)
	for _, h := range r.Headers {
		add(h.Value)
	}
	add(r.Body.Data)
	add(r.Body.File)
	for _, p := range r.Body.Parts {
		add(p.Value)
		add(p.File)
	}
	if r.Auth != nil {
		add(r.Auth.User)
		add(r.Auth.Password)
	}
	return out
}

// Warning is something in the command that was not converted, or was
// converted with a change the user should know about.
type Warning struct {
	Pos Pos
	// Option is the curl option or shell construct concerned, if any.
	Option string
	Msg    string
}

func (w Warning) String() string {
	if w.Pos.Line == 0 {
		return w.Msg
	}
	return w.Pos.String() + ": " + w.Msg
}

// Script is the outcome of parsing shell text: one Request per URL of each
// curl command, and warnings about the rest of the text.
type Script struct {
	Requests []*Request
	Warnings []Warning
}

// AllWarnings returns the script's warnings and those of its requests,
// sorted by position (see SortWarnings).
func (s *Script) AllWarnings() []Warning {
	out := append([]Warning(nil), s.Warnings...)
	for _, r := range s.Requests {
		out = append(out, r.Warnings...)
	}
	return SortWarnings(out)
}

// SortWarnings sorts ws in place by position, line then column, and
// returns it without repeats. Warnings are found in several passes (shell
// words, options, then the request built from them), so that without
// sorting they would come out of the order in which a person reads the
// command. The sort is stable: warnings without a position (ParseArgs) come
// first, in the order they were found. A warning repeated at the same known
// position, as one about an option shared by the several URLs of a
// command, is said once.
func SortWarnings(ws []Warning) []Warning {
	slices.SortStableFunc(ws, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	seen := map[Warning]bool{}
	out := ws[:0]
	for _, w := range ws {
		if w.Pos.Line != 0 && seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// Error is a command that cannot be converted: a shell syntax error, or no
// curl command at all. Pos says where.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
