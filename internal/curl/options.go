package curl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// optKind says what an option does with its argument, if it has one.
type optKind int

const (
	flagOpt      optKind = iota // no argument
	valueOpt                    // takes an argument
	ignoredFlag                 // no argument, changes only curl's own display
	ignoredValue                // takes an argument, changes only curl's own display
	unsupFlag                   // no argument, known but not converted
	unsupValue                  // takes an argument, known but not converted
)

type optSpec struct {
	kind optKind
	why  string // for unsupported options: what the generated code does instead
}

// longOpts is the curl options this package knows, by long name.
var longOpts = map[string]optSpec{
	// The request.
	"request": {kind: valueOpt}, "header": {kind: valueOpt}, "url": {kind: valueOpt},
	"url-query": {kind: valueOpt}, "get": {kind: flagOpt}, "head": {kind: flagOpt},
	"data": {kind: valueOpt}, "data-ascii": {kind: valueOpt}, "data-binary": {kind: valueOpt},
	"data-raw": {kind: valueOpt}, "data-urlencode": {kind: valueOpt}, "json": {kind: valueOpt},
	"form": {kind: valueOpt}, "form-string": {kind: valueOpt}, "upload-file": {kind: valueOpt},
	"user": {kind: valueOpt}, "basic": {kind: flagOpt}, "oauth2-bearer": {kind: valueOpt},
	"cookie": {kind: valueOpt}, "user-agent": {kind: valueOpt}, "referer": {kind: valueOpt},
	"insecure": {kind: flagOpt}, "compressed": {kind: flagOpt}, "location": {kind: flagOpt},
	"max-redirs": {kind: valueOpt}, "output": {kind: valueOpt},
	"max-time": {kind: valueOpt}, "connect-timeout": {kind: valueOpt},
	"retry": {kind: valueOpt}, "retry-delay": {kind: valueOpt}, "retry-max-time": {kind: valueOpt},
	"retry-connrefused": {kind: flagOpt}, "retry-all-errors": {kind: flagOpt},
	"next": {kind: flagOpt},

	// Options that change what curl prints, not the request.
	"silent": {kind: ignoredFlag}, "show-error": {kind: ignoredFlag}, "verbose": {kind: ignoredFlag},
	"include": {kind: ignoredFlag}, "progress-bar": {kind: ignoredFlag}, "no-progress-meter": {kind: ignoredFlag},
	"fail": {kind: ignoredFlag}, "fail-with-body": {kind: ignoredFlag}, "globoff": {kind: ignoredFlag},
	"no-buffer": {kind: ignoredFlag}, "disable": {kind: ignoredFlag}, "styled-output": {kind: ignoredFlag},
	"tcp-nodelay": {kind: ignoredFlag}, "path-as-is": {kind: ignoredFlag},

	// Known, not converted: each one is reported.
	"proxy":      {kind: valueOpt},
	"proxy-user": {kind: valueOpt}, "socks5": {kind: valueOpt}, "socks5-hostname": {kind: valueOpt},
	"noproxy": {kind: unsupValue}, "preproxy": {kind: unsupValue},
	"cert": {kind: unsupValue, why: "client certificates are not converted"}, "key": {kind: unsupValue},
	"cacert": {kind: unsupValue, why: "the system's certificate authorities are used"}, "capath": {kind: unsupValue},
	"cert-type": {kind: unsupValue}, "key-type": {kind: unsupValue}, "pass": {kind: unsupValue},
	"pinnedpubkey": {kind: unsupValue}, "ciphers": {kind: unsupValue},
	"cookie-jar":           {kind: valueOpt},
	"junk-session-cookies": {kind: unsupFlag},
	"digest":               {kind: flagOpt}, "ntlm": {kind: unsupFlag},
	"negotiate": {kind: unsupFlag}, "anyauth": {kind: unsupFlag}, "no-basic": {kind: unsupFlag},
	"aws-sigv4": {kind: unsupValue},
	"http1.0":   {kind: unsupFlag}, "http1.1": {kind: unsupFlag}, "http2": {kind: unsupFlag},
	"http2-prior-knowledge": {kind: unsupFlag}, "http3": {kind: unsupFlag}, "http3-only": {kind: unsupFlag},
	"ipv4": {kind: unsupFlag}, "ipv6": {kind: unsupFlag},
	"tlsv1": {kind: unsupFlag}, "tlsv1.0": {kind: unsupFlag}, "tlsv1.1": {kind: unsupFlag},
	"tlsv1.2": {kind: unsupFlag}, "tlsv1.3": {kind: unsupFlag}, "tls-max": {kind: unsupValue},
	"ssl-no-revoke": {kind: unsupFlag},
	"resolve":       {kind: unsupValue}, "connect-to": {kind: unsupValue}, "interface": {kind: unsupValue},
	"local-port": {kind: unsupValue}, "unix-socket": {kind: unsupValue}, "abstract-unix-socket": {kind: unsupValue},
	"dns-servers": {kind: unsupValue},
	"trace":       {kind: unsupValue}, "trace-ascii": {kind: unsupValue}, "trace-time": {kind: unsupFlag},
	"write-out": {kind: unsupValue}, "dump-header": {kind: unsupValue}, "stderr": {kind: unsupValue},
	"remote-name": {kind: unsupFlag}, "remote-name-all": {kind: unsupFlag}, "remote-header-name": {kind: unsupFlag},
	"remote-time": {kind: unsupFlag}, "create-dirs": {kind: unsupFlag}, "output-dir": {kind: unsupValue},
	"continue-at": {kind: unsupValue}, "range": {kind: valueOpt},
	"limit-rate": {kind: unsupValue}, "speed-limit": {kind: unsupValue}, "speed-time": {kind: unsupValue},
	"keepalive-time": {kind: unsupValue}, "no-keepalive": {kind: unsupFlag},
	"expect100-timeout": {kind: unsupValue}, "parallel": {kind: unsupFlag}, "parallel-max": {kind: unsupValue},
	"config":    {kind: unsupValue, why: "options in a config file are not read"},
	"time-cond": {kind: unsupValue}, "raw": {kind: unsupFlag}, "post301": {kind: unsupFlag},
	"post302": {kind: unsupFlag}, "post303": {kind: unsupFlag}, "location-trusted": {kind: unsupFlag},
	"netrc": {kind: unsupFlag}, "netrc-optional": {kind: unsupFlag}, "netrc-file": {kind: unsupValue},
	"delegation": {kind: unsupValue}, "proto": {kind: unsupValue}, "proto-redir": {kind: unsupValue},
	"ignore-content-length": {kind: unsupFlag}, "max-filesize": {kind: unsupValue},
	"variable": {kind: unsupValue}, "expand-url": {kind: unsupValue},
	// Options of protocols other than HTTP, known so that their argument is
	// not taken for a URL.
	"ftp-port": {kind: unsupValue}, "quote": {kind: unsupValue}, "telnet-option": {kind: unsupValue},
	"append": {kind: unsupFlag}, "use-ascii": {kind: unsupFlag}, "list-only": {kind: unsupFlag},
	"manual": {kind: unsupFlag}, "proxytunnel": {kind: unsupFlag}, "version": {kind: unsupFlag},
	"help": {kind: unsupFlag},
}

// shortOpts maps curl's one-letter options to their long names.
var shortOpts = map[byte]string{
	'X': "request", 'H': "header", 'G': "get", 'I': "head", 'd': "data", 'F': "form",
	'T': "upload-file", 'u': "user", 'b': "cookie", 'A': "user-agent", 'e': "referer",
	'k': "insecure", 'L': "location", 'o': "output", 'm': "max-time",
	's': "silent", 'S': "show-error", 'v': "verbose", 'i': "include", '#': "progress-bar",
	'f': "fail", 'g': "globoff", 'N': "no-buffer", 'q': "disable",
	'x': "proxy", 'U': "proxy-user", 'E': "cert", 'c': "cookie-jar", 'j': "junk-session-cookies",
	'0': "http1.0", '4': "ipv4", '6': "ipv6", '1': "tlsv1", 'w': "write-out", 'D': "dump-header",
	'O': "remote-name", 'J': "remote-header-name", 'R': "remote-time", 'C': "continue-at", 'r': "range",
	'Y': "speed-limit", 'y': "speed-time", 'K': "config", 'z': "time-cond", 'Z': "parallel",
	'n': "netrc", 'P': "ftp-port", 'Q': "quote", 'a': "append", 'B': "use-ascii", 'l': "list-only",
	'M': "manual", 'p': "proxytunnel", 't': "telnet-option", 'V': "version", 'h': "help",
}

// dataItem is one -d, --data-*, or --json argument, in order.
type dataItem struct {
	opt   string
	value arg
}

// group is the state of one --next section of a curl command.
type group struct {
	pos      Pos
	warns    []Warning
	method   string
	methodAt bool
	headers  []Header
	urls     []arg
	queries  []Text
	data     []dataItem
	form     []FormPart
	get      bool
	head     bool
	upload   *arg
	auth     *Auth
	bearer   Text
	cookies  []Text
	agent    Text
	agentSet bool
	referer  Text
	refSet   bool
	rng      Text   // --range
	proxy    *arg   // -x, --socks5, --socks5-hostname
	proxyAs  string // the scheme --socks5 and --socks5-hostname imply
	proxyUsr *arg   // -U
	cookieFs []string
	jar      string  // -c
	digest   bool    // --digest (--basic turns it off)
	req      Request // the plain settings: timeouts, retry, flags
}

// validRange reports whether s is a byte range set curl accepts for
// --range: comma-separated ranges of digits around a '-'.
func validRange(s string) bool {
	for _, r := range strings.Split(s, ",") {
		first, last, ok := strings.Cut(strings.TrimSpace(r), "-")
		if !ok || first == "" && last == "" || strings.Trim(first+last, "0123456789") != "" {
			return false
		}
	}
	return true
}

// plainMethod reports whether m is a method name of letters, digits, '-',
// '_' and '.': a subset of RFC 9110's token that no target language needs
// to escape.
func plainMethod(m string) bool {
	if m == "" {
		return true
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (g *group) warn(a arg, opt, format string, args ...any) {
	g.warns = append(g.warns, Warning{Pos: a.pos, Option: opt, Msg: fmt.Sprintf(format, args...)})
}

// parseCurl reads curl's arguments (without "curl") into requests, one per
// URL. in is where standard input comes from, for @- data.
func parseCurl(at Pos, args []arg, in stdinSource) ([]*Request, []Warning) {
	var reqs []*Request
	var warns []Warning
	g := &group{pos: at}
	flush := func() {
		rs, ws := g.finish(in)
		reqs = append(reqs, rs...)
		warns = append(warns, ws...)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func(opt string) (arg, bool) {
			if i+1 >= len(args) {
				g.warn(a, opt, "option %s needs a value: ignored", opt)
				return arg{}, false
			}
			i++
			return args[i], true
		}
		if !a.text.HasLitPrefix("-") || a.raw == "-" || len(a.text) == 0 {
			g.urls = append(g.urls, a)
			continue
		}
		lit := a.text[0].Lit
		if strings.HasPrefix(lit, "--") {
			if lit == "--" {
				// Everything after is a URL.
				g.urls = append(g.urls, args[i+1:]...)
				break
			}
			name := strings.TrimPrefix(a.text.String(), "--")
			var val *arg
			if n, v, ok := a.text.TrimLitPrefix("--").Cut("="); ok {
				if spec, known := longOpts[n.String()]; known && (spec.kind == valueOpt || spec.kind == unsupValue || spec.kind == ignoredValue) {
					name = n.String()
					val = &arg{text: v, lit: v.IsLiteral(), raw: v.String(), pos: a.pos}
				}
			}
			if name == "next" {
				flush()
				g = &group{pos: a.pos}
				continue
			}
			spec, ok := longOpts[name]
			if !ok && strings.HasPrefix(name, "no-") {
				if s2, ok2 := longOpts[strings.TrimPrefix(name, "no-")]; ok2 && (s2.kind == flagOpt || s2.kind == ignoredFlag || s2.kind == unsupFlag) {
					g.negate(a, strings.TrimPrefix(name, "no-"))
					continue
				}
			}
			if !ok {
				g.warn(a, "--"+name, "unknown option --%s: ignored", name)
				continue
			}
			switch spec.kind {
			case valueOpt, unsupValue, ignoredValue:
				if val == nil {
					v, ok := next("--" + name)
					if !ok {
						continue
					}
					val = &v
				}
				g.apply(a, "--"+name, name, *val)
			default:
				g.apply(a, "--"+name, name, arg{})
			}
			continue
		}
		// A cluster of short options: -sSLk, -XPOST, -ofile, -H"X: $V". Only
		// the literal start of the word can hold option letters; what
		// follows a variable can only be part of an attached value.
		cluster, tail := lit[1:], a.text[1:]
		if len(tail) > 0 && !hasValueOpt(cluster) {
			g.warn(a, a.text.String(), "option %q mixes a variable into its name: ignored", a.text.String())
			continue
		}
		for j := 0; j < len(cluster); j++ {
			c := cluster[j]
			name, ok := shortOpts[c]
			if !ok {
				g.warn(a, "-"+string(c), "unknown option -%c: ignored", c)
				continue
			}
			spec := longOpts[name]
			opt := "-" + string(c)
			switch spec.kind {
			case valueOpt, unsupValue, ignoredValue:
				var v arg
				if rest := Concat(Lit(cluster[j+1:]), tail); len(rest) > 0 {
					v = arg{text: rest, lit: rest.IsLiteral(), pos: a.pos}
					if v.lit {
						v.raw = rest.String()
					}
				} else {
					var ok bool
					if v, ok = next(opt); !ok {
						break
					}
				}
				g.apply(a, opt, name, v)
				j = len(cluster)
			default:
				g.apply(a, opt, name, arg{})
			}
		}
	}
	flush()
	return reqs, warns
}

// hasValueOpt reports whether a cluster of short option letters holds an
// option that takes a value (which then takes the rest of the word).
func hasValueOpt(cluster string) bool {
	for i := 0; i < len(cluster); i++ {
		if name, ok := shortOpts[cluster[i]]; ok {
			switch longOpts[name].kind {
			case valueOpt, unsupValue, ignoredValue:
				return true
			}
		}
	}
	return false
}

// negate applies --no-NAME for a boolean option.
func (g *group) negate(a arg, name string) {
	switch name {
	case "get":
		g.get = false
	case "head":
		g.head = false
	case "insecure":
		g.req.Insecure = false
	case "compressed":
		g.req.Compressed = false
	case "location":
		g.req.FollowRedirects = false
	case "retry-connrefused":
		g.req.Retry.ConnRefused = false
	case "retry-all-errors":
		g.req.Retry.AllErrors = false
	}
}

// apply applies one option; opt is how the command spelled it.
func (g *group) apply(a arg, opt, name string, v arg) {
	spec := longOpts[name]
	switch spec.kind {
	case ignoredFlag, ignoredValue:
		return
	case unsupFlag, unsupValue:
		msg := fmt.Sprintf("option %s is not supported: ignored", opt)
		if spec.why != "" {
			msg += " (" + spec.why + ")"
		}
		g.warn(a, opt, "%s", msg)
		return
	}
	switch name {
	case "request":
		// -X "" puts curl back to choosing the method itself.
		m := v.text.String()
		if !v.lit {
			g.warn(v, opt, "a method read from a variable (%s) is not supported: ignored, curl's own choice of method used", m)
			return
		}
		if !plainMethod(m) {
			// Generated code quotes what it embeds, but a method also lands
			// in comments and messages: only plain names get through.
			g.warn(v, opt, "%q is not an HTTP method holdfast can generate code for (letters, digits, '-', '_' and '.' only): ignored, curl's own choice of method used", m)
			return
		}
		g.method = m
		g.methodAt = g.method != ""
	case "header":
		n, val, ok := v.text.Cut(":")
		if !ok {
			if s := v.text.String(); v.lit && strings.HasSuffix(s, ";") {
				// "-H 'X-Empty;'" sends a header with an empty value.
				g.headers = append(g.headers, Header{Name: strings.TrimSpace(strings.TrimSuffix(s, ";"))})
				return
			}
			if v.text.HasLitPrefix("@") {
				g.warn(v, opt, "headers read from a file (%s) are not supported: ignored", v.text.String())
				return
			}
			g.warn(v, opt, "header %q has no colon: ignored", v.text.String())
			return
		}
		name := strings.TrimSpace(n.String())
		if !n.IsLiteral() || !validHeaderName(name) {
			g.warn(v, opt, "header %q has no valid name: ignored", v.text.String())
			return
		}
		val = trimSpaceText(val)
		if hasCRLF(val) {
			// A CR or LF inside the value would end the header line and
			// start another one (header injection): nothing is sent.
			g.warn(v, opt, "header %q has a carriage return or line feed inside its value: ignored (send each header with its own -H)", v.text.String())
			return
		}
		if len(val) == 0 {
			// "-H 'Accept:'" removes a header curl would send.
			g.warn(v, opt, "-H %q removes curl's default %s header; the generated code may still send its own", name+":", name)
			g.headers = removeHeader(g.headers, name)
			return
		}
		if (strings.EqualFold(name, "Idempotency-Key") || strings.EqualFold(name, "X-Idempotency-Key")) && !val.IsLiteral() {
			g.warn(v, opt, "the %s comes from %s, which may be empty when the program runs: the generated code does not count on it, and retries a POST or PATCH only when it provably never left", name, val.String())
		}
		g.headers = append(g.headers, Header{Name: name, Value: val})
	case "url":
		g.urls = append(g.urls, v)
	case "url-query":
		g.queries = append(g.queries, encodeQueryArg(g, v, opt))
	case "get":
		g.get = true
	case "head":
		g.head = true
	case "data", "data-ascii", "data-binary", "data-raw", "data-urlencode", "json":
		g.data = append(g.data, dataItem{opt: name, value: v})
	case "form", "form-string":
		g.form = append(g.form, formPart(g, v, opt, name == "form-string"))
	case "upload-file":
		u := v
		g.upload = &u
	case "user":
		u, p, ok := v.text.Cut(":")
		if !ok && !v.lit {
			// -u "$CREDS": curl splits the value at its first ':' once the
			// shell has expanded it; the generated code does the same when
			// it runs.
			g.auth = &Auth{User: v.text, SplitAtRunTime: true}
			return
		}
		if !ok {
			g.warn(v, opt, "-u without a password: curl would prompt for one; the generated code sends an empty password")
		}
		g.auth = &Auth{User: u, Password: p}
	case "basic":
		g.digest = false
	case "digest":
		g.digest = true
	case "cookie-jar":
		if !v.lit || v.text.String() == "" {
			g.warn(v, opt, "%s %q: a jar named by a variable is not converted: the cookies are not saved", opt, v.text.String())
			return
		}
		g.jar = v.text.String()
	case "oauth2-bearer":
		if hasCRLF(v.text) {
			g.warn(v, opt, "%s value has a carriage return or line feed inside: ignored", opt)
			return
		}
		g.bearer = v.text
	case "cookie":
		if hasCRLF(v.text) {
			g.warn(v, opt, "%s %q has a carriage return or line feed inside: ignored", opt, v.text.String())
			return
		}
		if v.text.ContainsLit("=") || !v.lit {
			g.cookies = append(g.cookies, v.text)
			return
		}
		// A value without '=' names a cookie file, which the generated
		// program reads when it runs, as curl does.
		g.cookieFs = append(g.cookieFs, v.text.String())
	case "proxy":
		a := v
		g.proxy, g.proxyAs = &a, ""
	case "socks5", "socks5-hostname":
		a := v
		g.proxy, g.proxyAs = &a, map[string]string{"socks5": "socks5", "socks5-hostname": "socks5h"}[name]
	case "proxy-user":
		a := v
		g.proxyUsr = &a
	case "range":
		// curl sends -r 0-99 as Range: bytes=0-99, on a request of any
		// method but an upload (which it resumes instead).
		if hasCRLF(v.text) || v.text.IsLiteral() && !validRange(v.text.String()) {
			g.warn(v, opt, "%s %q is not a byte range curl sends (like 0-99, 100-, -500 or 0-1,5-9): ignored", opt, v.text.String())
			return
		}
		g.rng = v.text
	case "user-agent":
		if hasCRLF(v.text) {
			g.warn(v, opt, "%s %q has a carriage return or line feed inside: ignored", opt, v.text.String())
			return
		}
		g.agent, g.agentSet = v.text, true
	case "referer":
		if hasCRLF(v.text) {
			g.warn(v, opt, "%s %q has a carriage return or line feed inside: ignored", opt, v.text.String())
			return
		}
		ref := v.text
		if r, _, ok := ref.Cut(";auto"); ok {
			ref = r
		}
		g.referer, g.refSet = ref, true
	case "insecure":
		g.req.Insecure = true
	case "compressed":
		g.req.Compressed = true
	case "location":
		g.req.FollowRedirects = true
	case "max-redirs":
		if n, ok := g.intValue(v, opt); ok {
			switch {
			case n == 0:
				g.warn(v, opt, "--max-redirs 0 (follow no redirect) is not supported: the generated code follows up to 50, curl's default")
			case n < 0:
				g.warn(v, opt, "--max-redirs %d (no limit) is not supported: the generated code follows up to 50, curl's default", n)
			default:
				g.req.MaxRedirects = n
			}
		}
	case "output":
		if !v.lit {
			g.warn(v, opt, "an output file named by a variable is not supported: writing to standard output")
			return
		}
		g.req.Output = v.raw
	case "max-time":
		g.req.MaxTime = g.seconds(v, opt)
	case "connect-timeout":
		g.req.ConnectTimeout = g.seconds(v, opt)
	case "retry":
		if n, ok := g.intValue(v, opt); ok {
			g.req.Retry.Count, g.req.Retry.CountSet, g.req.Retry.Pos = n, true, a.pos
		}
	case "retry-delay":
		g.req.Retry.Delay = g.seconds(v, opt)
	case "retry-max-time":
		g.req.Retry.MaxTime = g.seconds(v, opt)
	case "retry-connrefused":
		g.req.Retry.ConnRefused = true
	case "retry-all-errors":
		g.req.Retry.AllErrors = true
	}
}

func (g *group) seconds(v arg, opt string) time.Duration {
	if !v.lit {
		g.warn(v, opt, "%s from a variable is not supported: ignored", opt)
		return 0
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v.raw), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e9 {
		g.warn(v, opt, "%s %q is not a number of seconds: ignored", opt, v.raw)
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func (g *group) intValue(v arg, opt string) (int, bool) {
	if !v.lit {
		g.warn(v, opt, "%s from a variable is not supported: ignored", opt)
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.raw))
	if err != nil || n < -1 || n > 1_000_000 {
		g.warn(v, opt, "%s %q is not a count: ignored", opt, v.raw)
		return 0, false
	}
	return n, true
}

func trimSpaceText(t Text) Text {
	t = t.norm()
	if len(t) > 0 && t[0].Env == "" {
		t[0].Lit = strings.TrimLeft(t[0].Lit, " \t")
	}
	if n := len(t); n > 0 && t[n-1].Env == "" {
		t[n-1].Lit = strings.TrimRight(t[n-1].Lit, " \t\r\n")
	}
	return t.norm()
}

// hasCRLF reports whether a literal part of t holds a carriage return or a
// line feed, which cannot appear inside a header value.
func hasCRLF(t Text) bool {
	return t.ContainsLit("\r") || t.ContainsLit("\n")
}

func removeHeader(hs []Header, name string) []Header {
	out := hs[:0]
	for _, h := range hs {
		if !strings.EqualFold(h.Name, name) {
			out = append(out, h)
		}
	}
	return out
}

// formPart parses one -F argument: name=value, name=@file, name=<file, with
// ;type= and ;filename= attributes.
func formPart(g *group, v arg, opt string, plain bool) FormPart {
	n, val, ok := v.text.Cut("=")
	if !ok {
		g.warn(v, opt, "form field %q has no '=': sent as an empty field", v.text.String())
	}
	p := FormPart{Name: n.String()}
	if plain {
		p.Value = val
		return p
	}
	switch {
	case val.HasLitPrefix("@"), val.HasLitPrefix("<"):
		p.FileAsValue = val.HasLitPrefix("<")
		rest := val.TrimLitPrefix(val[0].Lit[:1])
		file, attrs := splitFormAttrs(rest)
		p.File = unquoteFormValue(file)
		p.ContentType, p.Filename = attrs["type"], attrs["filename"]
		if !p.FileAsValue && p.ContentType == "" {
			p.ContentType = g.guessFormType(v, opt, p)
		}
	default:
		value, attrs := splitFormAttrs(val)
		p.Value = unquoteFormValue(value)
		p.ContentType = attrs["type"]
	}
	return p
}

// formTypes is curl's own table of the Content-Type it gives an uploaded
// form file by its extension (case-insensitive); other files are
// application/octet-stream.
var formTypes = map[string]string{
	".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
	".svg": "image/svg+xml", ".txt": "text/plain", ".htm": "text/html", ".html": "text/html",
	".pdf": "application/pdf", ".xml": "application/xml",
}

// guessFormType is the Content-Type curl sends for the upload p (-F
// name=@file without ;type=): from the extension of the part's file name
// (;filename= or the file's base name), else from the local file's, else
// application/octet-stream.
func (g *group) guessFormType(v arg, opt string, p FormPart) string {
	byExt := func(name string) string {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			return formTypes[strings.ToLower(name[i:])]
		}
		return ""
	}
	if t := byExt(p.Filename); t != "" {
		return t
	}
	if !p.File.IsLiteral() {
		g.warn(v, opt, "curl gives the part %q a Content-Type from its file's extension, which comes from a variable here: application/octet-stream is sent (add ;type= to choose)", p.Name)
		return "application/octet-stream"
	}
	if t := byExt(p.File.String()); t != "" {
		return t
	}
	return "application/octet-stream"
}

// splitFormAttrs cuts ";type=..." and ";filename=..." off a form value, as
// curl does when they follow the value.
func splitFormAttrs(t Text) (Text, map[string]string) {
	attrs := map[string]string{}
	for {
		n := len(t)
		if n == 0 || t[n-1].Env != "" {
			return t, attrs
		}
		last := t[n-1].Lit
		i := strings.LastIndex(last, ";")
		if i < 0 {
			return t, attrs
		}
		k, val, ok := strings.Cut(last[i+1:], "=")
		k = strings.TrimSpace(strings.ToLower(k))
		if !ok || (k != "type" && k != "filename" && k != "headers" && k != "encoder") {
			return t, attrs
		}
		attrs[k] = strings.Trim(val, `"`)
		t = append(append(Text{}, t[:n-1]...), Segment{Lit: last[:i]}).norm()
	}
}

// unquoteFormValue undoes the double quotes curl allows around a form value
// (-F 'name="value"').
func unquoteFormValue(t Text) Text {
	s := t.String()
	if t.IsLiteral() && len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		inner = strings.ReplaceAll(inner, `\"`, `"`)
		inner = strings.ReplaceAll(inner, `\\`, `\`)
		return Lit(inner)
	}
	return t
}

// encodeQueryArg turns --url-query's argument into query text: "+x" is
// sent as is, the rest encoded as --data-urlencode encodes.
func encodeQueryArg(g *group, v arg, opt string) Text {
	if v.text.HasLitPrefix("+") {
		return v.text.TrimLitPrefix("+")
	}
	t, problem := urlencodeArg(v.text)
	if problem != "" {
		g.warn(v, opt, "%s %q %s", opt, v.text.String(), problem)
	}
	return t
}

// urlencodeArg implements the forms of --data-urlencode (and of
// --url-query): "content", "=content", "name=content", "@file" and
// "name@file", as curl tells them apart: a '=' makes a name (before it)
// and content (after it, encoded); without '=', a '@' makes a name and a
// file, whose contents the program reads and encodes when it runs;
// neither: all of it is content. A variable's value in the content is
// encoded when the program runs. When the split depends on a variable's
// value (one that comes before any literal '=', which its value may hold),
// or a file's name reads a variable, problem says so and the value goes
// out as given.
func urlencodeArg(t Text) (out Text, problem string) {
	if name, content, ok := t.Cut("="); ok {
		if !name.IsLiteral() {
			return t, fmt.Sprintf("has %s before its '=': the value of %s is sent as given, not split and URL-encoded as curl would",
				"$"+strings.Join(name.Vars(), ", $"), "$"+strings.Join(name.Vars(), ", $"))
		}
		if len(name) == 0 {
			return encodeText(content), ""
		}
		return Concat(name, Lit("="), encodeText(content)), ""
	}
	if name, file, ok := t.Cut("@"); ok && name.IsLiteral() {
		if !file.IsLiteral() {
			return t, fmt.Sprintf("reads a file named by %s, which is not converted: sent as given", "$"+strings.Join(file.Vars(), ", $"))
		}
		if file.String() == "" {
			return nil, "names no file after '@': nothing is sent for it"
		}
		seg := Text{{File: file.String(), Encode: true}}
		if len(name) == 0 {
			return seg, ""
		}
		return Concat(name, Lit("="), seg), ""
	}
	if !t.IsLiteral() {
		return t, fmt.Sprintf("has no literal '=': curl splits the value of %s at its first '=' or '@' when it runs, which is not converted: sent as given",
			"$"+strings.Join(t.Vars(), ", $"))
	}
	return encodeText(t), ""
}

// encodeText is t with its literals percent-encoded now, and its
// variables marked to be encoded when the program runs.
func encodeText(t Text) Text {
	out := make(Text, 0, len(t))
	for _, s := range t {
		if s.IsLit() {
			s.Lit = Escape(s.Lit)
		} else {
			s.Encode = true
		}
		out = append(out, s)
	}
	return out.norm()
}

// Escape percent-encodes s as curl's --data-urlencode does: every byte but
// letters, digits and -._~ is encoded, and a space becomes "+".
func Escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
