// Package codegen turns a parsed curl request into a program in another
// language that makes the same request and survives the failures behind
// 502, 503 and 504: it retries them and network errors with capped
// exponential backoff and full jitter, honours Retry-After, never retries a
// POST or PATCH that may have been delivered unless the command carries an
// Idempotency-Key header, and fails loudly with the final status.
//
// Each target language lives in its own file; all share the policy below.
package codegen

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/curl"
)

// Options changes what Generate produces. The zero value generates the
// resilient program.
type Options struct {
	// NoRetry generates the plain translation: one attempt, status still
	// checked.
	NoRetry bool
	// Async generates an asyncio program (httpx.AsyncClient, asyncio.run)
	// instead of a synchronous one. Only python-httpx has both; Generate
	// refuses Async for any other language. False: synchronous.
	Async bool
}

// ErrUnknownLanguage is returned by Generate for a language it has no
// generator for.
var ErrUnknownLanguage = errors.New("unknown language")

// ErrNoAsync is returned by Generate for Options.Async with a language
// that has no asynchronous variant.
var ErrNoAsync = errors.New("no asynchronous variant")

// asyncLanguages are the languages whose generator writes an asynchronous
// program when policy.Async is set.
var asyncLanguages = []string{"python-httpx"}

// AsyncLanguages returns the languages that accept Options.Async.
func AsyncLanguages() []string { return slices.Clone(asyncLanguages) }

// SupportsAsync reports whether lang, or the language it is an alias of,
// accepts Options.Async.
func SupportsAsync(lang string) bool { return slices.Contains(asyncLanguages, canonical(lang)) }

type generator func(r *curl.Request, p policy) string

// limits returns what one language's program, written under policy p,
// sends or does differently from curl for r, for the languages that cannot
// do all of it: each warning names the option concerned.
type limits func(r *curl.Request, p policy) []curl.Warning

// languageLimits holds the limits of the languages that have some.
func languageLimits() map[string]limits {
	return map[string]limits{
		"go":           goLimits,
		"go-holdfast":  goLimits,
		"java":         javaLimits,
		"javascript":   jsLimits,
		"python":       pythonLimits,
		"python-httpx": httpxLimits,
		"ruby":         rubyLimits,
		"rust":         rustLimits,
	}
}

func generators() map[string]generator {
	return map[string]generator{
		"go":           genGo,
		"go-holdfast":  genGoHoldfast,
		"python":       genPython,
		"python-httpx": genHTTPX,
		"javascript":   genJS,
		"java":         genJava,
		"php":          genPHP,
		"ruby":         genRuby,
		"c":            genC,
		"rust":         genRust,
		"shell":        genShell,
	}
}

// Languages returns the names Generate accepts, in the documented order.
func Languages() []string {
	order := []string{"go", "go-holdfast", "python", "python-httpx", "javascript", "java", "php", "ruby", "c", "rust", "shell"}
	g := generators()
	var out []string
	for _, l := range order {
		if g[l] != nil {
			out = append(out, l)
		}
	}
	return out
}

// Aliases accepted by Generate, for the flag's convenience.
func canonical(lang string) string {
	switch strings.ToLower(lang) {
	case "golang":
		return "go"
	case "golang-holdfast", "holdfast":
		return "go-holdfast"
	case "py", "python3":
		return "python"
	case "httpx":
		return "python-httpx"
	case "js", "node", "nodejs":
		return "javascript"
	case "sh", "bash", "curl":
		return "shell"
	case "rb":
		return "ruby"
	case "libcurl":
		return "c"
	case "rs", "reqwest":
		return "rust"
	}
	return strings.ToLower(lang)
}

// scriptGenerator writes one program that makes the requests rs in
// order, each under its own policy ps[i]: one function per request,
// called in turn; a request that fails is reported and the next one still
// runs, as curl goes on with the next URL, and the program exits non-zero
// when any failed. It is called with two requests or more.
type scriptGenerator func(rs []*curl.Request, ps []policy) string

// scriptGenerators holds, for every language, the generator of a program
// that makes several requests.
func scriptGenerators() map[string]scriptGenerator {
	return map[string]scriptGenerator{
		"shell":        genShellScript,
		"rust":         genRustScript,
		"javascript":   genJSScript,
		"java":         genJavaScript,
		"php":          genPHPScript,
		"c":            genCScript,
		"ruby":         genRubyScript,
		"go":           genGoScript,
		"go-holdfast":  genGoHoldfastScript,
		"python":       genPythonScript,
		"python-httpx": genHTTPXScript,
	}
}

// Generate returns a program in lang that makes request r.
func Generate(lang string, r *curl.Request, opts Options) (string, error) {
	g := generators()[canonical(lang)]
	if err := checkLanguage(lang, opts); err != nil {
		return "", err
	}
	return g(r, newPolicy(r, opts)), nil
}

func checkLanguage(lang string, opts Options) error {
	if generators()[canonical(lang)] == nil {
		return fmt.Errorf("%w %q (supported: %s)", ErrUnknownLanguage, lang, strings.Join(Languages(), ", "))
	}
	if opts.Async && !SupportsAsync(lang) {
		return fmt.Errorf("%w for %s (--async is for %s)", ErrNoAsync, canonical(lang), strings.Join(asyncLanguages, ", "))
	}
	return nil
}

// GenerateScript returns a program in lang that makes the requests rs in
// order, as one curl command line (with several URLs or --next) or
// several commands make them. One request gives what Generate gives.
// Several give one program with a function per request, run in order,
// that goes on after a failed request and exits non-zero if any failed.
func GenerateScript(lang string, rs []*curl.Request, opts Options) (string, error) {
	if err := checkLanguage(lang, opts); err != nil {
		return "", err
	}
	if len(rs) == 1 {
		return Generate(lang, rs[0], opts)
	}
	ps := make([]policy, len(rs))
	for i, r := range rs {
		ps[i] = newPolicy(r, opts)
	}
	return scriptGenerators()[canonical(lang)](rs, ps), nil
}

// Warnings returns what the program that Generate writes in lang for r
// does differently from what the command asks, and that its user should
// hear when converting, not only from a comment in the generated file:
// those that follow from the policy every language shares, then those of
// lang itself. A caller says them once per request, beside the parser's
// warnings. An unknown lang has only the shared ones.
func Warnings(lang string, r *curl.Request, opts Options) []curl.Warning {
	p := newPolicy(r, opts)
	var out []curl.Warning
	if l := languageLimits()[canonical(lang)]; l != nil {
		out = append(out, l(r, p)...)
	}
	if p.dropsRetry(r) {
		out = append(out, curl.Warning{
			Pos:    r.Retry.Pos,
			Option: "--retry",
			Msg: fmt.Sprintf("--retry %d is not applied to %s %s: without an Idempotency-Key header it may have reached the server, "+
				"so it is not resent after an error status, a timeout or a dropped connection; "+
				"add -H 'Idempotency-Key: <unique value>' if the server deduplicates on it", r.Retry.Count, r.Method, r.URL.String()),
		})
	}
	return out
}

// Defaults of the generated retry policy, when the curl command does not
// set its own. Three retries and a half-second first step ride out a
// restarting upstream or a keep-alive race without stretching a failing
// call beyond a few seconds; the 10 s cap keeps one wait from dominating.
const (
	defaultRetries   = 3
	defaultBaseDelay = 500 * time.Millisecond
	defaultMaxDelay  = 10 * time.Second
	// maxRetryAfter is the longest Retry-After the generated code waits
	// out; a longer one ends the retries, as waiting would outlast any
	// caller's patience.
	maxRetryAfter = 60 * time.Second
)

// policy is what the generated code does on failure, derived once from the
// request so that every language says the same thing.
type policy struct {
	Retry          bool          // false: one attempt only
	Attempts       int           // total attempts, first included
	BaseDelay      time.Duration // first backoff step (curl --retry-delay)
	MaxDelay       time.Duration // cap on one backoff step
	MaxElapsed     time.Duration // --retry-max-time: no retry starts after it; 0 = none
	AttemptTimeout time.Duration // --max-time, per attempt; 0 = none
	ConnectTimeout time.Duration // --connect-timeout; 0 = the language's default
	// Safe is set when the request may be sent twice: an idempotent method,
	// or an Idempotency-Key header. Unsafe requests are retried only when
	// the connection was refused, so nothing was sent.
	Safe   bool
	HasKey bool
	// AllErrors is curl's --retry-all-errors: every 4xx and 5xx status is
	// retried too, not only 502, 503 and 504. Safe still decides whether
	// the request may be resent at all.
	AllErrors bool
	// Async is Options.Async: the program awaits its requests and waits
	// (python-httpx), which changes how it bounds an attempt.
	Async bool
}

func newPolicy(r *curl.Request, opts Options) policy {
	p := policy{
		Attempts:       defaultRetries + 1,
		BaseDelay:      defaultBaseDelay,
		MaxDelay:       defaultMaxDelay,
		MaxElapsed:     r.Retry.MaxTime,
		AttemptTimeout: r.MaxTime,
		ConnectTimeout: r.ConnectTimeout,
		HasKey:         r.HasIdempotencyKey(),
		AllErrors:      r.Retry.AllErrors,
		Async:          opts.Async,
	}
	p.Safe = r.Idempotent() || p.HasKey
	if r.Retry.CountSet {
		p.Attempts = r.Retry.Count + 1
	}
	if r.Retry.Delay > 0 {
		p.BaseDelay = r.Retry.Delay
		if p.BaseDelay > p.MaxDelay {
			p.MaxDelay = p.BaseDelay
		}
	}
	p.Retry = !opts.NoRetry && p.Attempts > 1
	if !p.Retry {
		p.Attempts = 1
	}
	return p
}

// dropsRetry reports whether the command asks for retries (curl --retry
// N, N > 0) that the policy refuses for its method: a POST or PATCH
// without an Idempotency-Key header, which every target sends once unless
// nothing was sent (the shell target, left to curl's own retry, sends it
// once in any case).
func (p policy) dropsRetry(r *curl.Request) bool {
	return p.Retry && !p.Safe && r.Retry.CountSet && r.Retry.Count > 0
}

// summary is the retry policy in a few lines of prose, for the comment at
// the top of every generated program.
func (p policy) summary(r *curl.Request) []string {
	if !p.Retry {
		return []string{"No retries (--no-retry or curl --retry 0): one attempt; a final status of 400 or more is an error."}
	}
	what := "502, 503, 504 and network errors are retried"
	if p.AllErrors {
		what = "Every 4xx and 5xx status (curl --retry-all-errors) and network errors are retried"
	}
	lines := []string{
		fmt.Sprintf("Retry policy: up to %d attempts. %s", p.Attempts, what),
		fmt.Sprintf("with capped exponential backoff and full jitter (first step %s, cap %s);", dur(p.BaseDelay), dur(p.MaxDelay)),
		fmt.Sprintf("a Retry-After header is waited out (up to %s).", dur(maxRetryAfter)),
	}
	switch {
	case !p.Safe:
		lines = append(lines,
			fmt.Sprintf("%s is not idempotent and the command has no Idempotency-Key header, so it is", r.Method),
			"retried only when the connection was refused (nothing was sent); add the header",
			"to let it be retried after a 502, 503, 504 or a dropped connection.")
	case p.HasKey && !r.Idempotent():
		lines = append(lines, fmt.Sprintf("%s is retried because the command sends an Idempotency-Key header.", r.Method))
	}
	if p.AttemptTimeout > 0 {
		lines = append(lines, fmt.Sprintf("Each attempt may take %s (curl --max-time).", dur(p.AttemptTimeout)))
	}
	if p.MaxElapsed > 0 {
		lines = append(lines, fmt.Sprintf("No retry starts after %s in all (curl --retry-max-time).", dur(p.MaxElapsed)))
	}
	lines = append(lines, "A final status of 400 or more is an error.")
	return lines
}

func dur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// headers returns the request headers with repeated names merged, as the
// target languages' header maps hold one value per name: values joined with
// ", " (RFC 9110 section 5.3), cookies with "; ".
func headers(r *curl.Request) []curl.Header {
	var out []curl.Header
	index := map[string]int{}
	for _, h := range r.Headers {
		k := strings.ToLower(h.Name)
		if i, ok := index[k]; ok {
			sep := ", "
			if k == "cookie" {
				sep = "; "
			}
			out[i].Value = curl.JoinText([]curl.Text{out[i].Value, h.Value}, sep)
			continue
		}
		index[k] = len(out)
		out = append(out, h)
	}
	return out
}

// bodyBytes reports whether the body is inline text (raw, urlencoded, json).
func inlineBody(r *curl.Request) bool {
	switch r.Body.Kind {
	case curl.BodyRaw, curl.BodyURLEncoded, curl.BodyJSON:
		return true
	}
	return false
}

// curlFormType reports whether h is the Content-Type curl sends itself
// with data: application/x-www-form-urlencoded, for a body curl or libcurl
// sends as data (-d, CURLOPT_POSTFIELDS). Left to curl, it is dropped with
// the body when a redirect turns the request into a GET, where a header
// given explicitly would be kept.
func curlFormType(r *curl.Request, h curl.Header) bool {
	return strings.EqualFold(h.Name, "Content-Type") && h.Value.IsLiteral() &&
		h.Value.String() == "application/x-www-form-urlencoded" &&
		(inlineBody(r) || r.Body.Kind == curl.BodyFile)
}

// decodesResponse reports whether the program must decode a compressed
// response: curl --compressed asks for one and decodes it, and so does a
// command that sets Accept-Encoding itself (curl alone would print the
// compressed bytes; the generated program prints what was asked for).
func decodesResponse(r *curl.Request) bool {
	_, asks := r.Header("Accept-Encoding")
	return (r.Compressed || asks) && r.Method != "HEAD"
}

// undecodable warns, for a command that sets Accept-Encoding itself, of
// each coding it asks for that lang's program cannot decode (it decodes
// those in decodes).
func undecodable(r *curl.Request, lang string, decodes ...string) []curl.Warning {
	v, ok := r.Header("Accept-Encoding")
	if !ok || r.Method == "HEAD" {
		return nil
	}
	var out []curl.Warning
	for _, c := range strings.Split(strings.ToLower(v.String()), ",") {
		c, _, _ = strings.Cut(strings.TrimSpace(c), ";")
		c = strings.TrimSpace(c)
		if c == "" || c == "identity" || c == "*" || slices.Contains(decodes, c) {
			continue
		}
		out = append(out, curl.Warning{Pos: r.Pos, Option: "-H", Msg: fmt.Sprintf(
			"Accept-Encoding asks for %s, which the %s program cannot decode: a response in it fails (it decodes %s)", c, lang, strings.Join(decodes, " and "))})
	}
	return out
}

// upperCasedMethod warns that lib sends a method in upper case, for a
// command whose method (methods are case-sensitive) is not.
func upperCasedMethod(r *curl.Request, lib string) []curl.Warning {
	if r.Method == strings.ToUpper(r.Method) {
		return nil
	}
	return []curl.Warning{{Pos: r.Pos, Option: "-X", Msg: fmt.Sprintf(
		"%s sends every method in upper case: %q goes out as %q (methods are case-sensitive)", lib, r.Method, strings.ToUpper(r.Method))}}
}

// authCredentials returns -u's value, user:password, as one Text: for
// SplitAtRunTime, the value itself, which curl splits when it runs.
func authCredentials(a *curl.Auth) curl.Text {
	if a.SplitAtRunTime {
		return a.User
	}
	return curl.Concat(a.User, curl.Lit(":"), a.Password)
}

// parens wraps expr in parentheses when wrap is set: a concatenation
// whose method is called.
func parens(expr string, wrap bool) string {
	if wrap {
		return "(" + expr + ")"
	}
	return expr
}

// splitComment is the comment on the code that splits -u "$CREDS" when
// the program runs.
const splitComment = "curl -u: the value is user:password, split at its first ':' (no ':': no password)"
