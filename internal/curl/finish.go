package curl

import (
	"fmt"
	"slices"
	"strings"
)

// finish turns the options of one --next group into requests, one per URL.
func (g *group) finish(in stdinSource) ([]*Request, []Warning) {
	urls := g.urls[:0:0]
	for _, u := range g.urls {
		if len(u.text) == 0 {
			// curl fails on an empty URL and goes on with the next one.
			g.warns = append(g.warns, Warning{Pos: u.pos, Msg: "an empty URL is skipped (curl reports an error for it)"})
			continue
		}
		urls = append(urls, u)
	}
	g.urls = urls
	if len(g.urls) == 0 {
		if len(g.data) > 0 || len(g.headers) > 0 || len(g.form) > 0 || g.methodAt {
			g.warns = append(g.warns, Warning{Pos: g.pos, Msg: "a curl command without a URL is skipped"})
		}
		return nil, g.warns
	}
	var reqs []*Request
	for i, u := range g.urls {
		r := g.req // copies the plain settings
		r.Pos = g.pos
		if i == 0 {
			r.Warnings = g.warns
		}
		g.build(&r, u, in)
		reqs = append(reqs, &r)
	}
	return reqs, nil
}

func (g *group) build(r *Request, u arg, in stdinSource) {
	warn := func(a arg, opt, format string, args ...any) {
		r.Warnings = append(r.Warnings, Warning{Pos: a.pos, Option: opt, Msg: fmt.Sprintf(format, args...)})
	}
	r.Headers = append([]Header(nil), g.headers...)
	r.URL = withScheme(u.text)

	// The body, from data options, then forms, then -T.
	var body Body
	var queryData []Text
	if len(g.data) > 0 {
		body, queryData = g.dataBody(r, in, warn)
	}
	if len(g.form) > 0 {
		if body.Kind != BodyNone {
			warn(arg{pos: g.pos}, "-F", "-F cannot be combined with -d (curl refuses it): the form fields are ignored")
		} else {
			body = Body{Kind: BodyMultipart, Parts: append([]FormPart(nil), g.form...)}
			if ct, ok := r.Header("Content-Type"); ok {
				warn(arg{pos: g.pos}, "-H", "Content-Type %q is replaced by multipart/form-data with the boundary the generated code chooses", ct.String())
				r.Headers = removeHeader(r.Headers, "Content-Type")
			}
		}
	}
	if g.upload != nil {
		if body.Kind != BodyNone {
			warn(*g.upload, "-T", "-T together with data or a form is not supported: the upload %q is ignored", g.upload.text.String())
		} else if g.upload.raw == "-" || g.upload.raw == "." {
			body = stdinBody(in)
		} else {
			body = Body{Kind: BodyFile, File: g.upload.text}
			r.URL = g.uploadURL(r.URL, warn)
		}
	}

	// The method.
	switch {
	case g.methodAt:
		// Verbatim: curl sends -X post as "post", and methods are
		// case-sensitive (RFC 9110 section 9.1).
		r.Method, r.MethodExplicit = g.method, true
	case g.head:
		r.Method = "HEAD"
	case g.get:
		r.Method = "GET"
	case g.upload != nil && body.Kind == BodyFile:
		r.Method = "PUT"
	case body.Kind != BodyNone:
		r.Method = "POST"
	default:
		r.Method = "GET"
	}

	// -G: the data goes into the query instead.
	if g.get && len(queryData) > 0 {
		r.URL = appendQuery(r.URL, JoinText(queryData, "&"))
		body = Body{}
	}
	for _, q := range g.queries {
		r.URL = appendQuery(r.URL, q)
	}
	if g.head && body.Kind != BodyNone {
		// curl refuses -I with -d, -F or -T ("You can only select one HTTP
		// request method!"); a HEAD request carries no body.
		warn(arg{pos: g.pos}, "-I", "-I (HEAD) cannot be combined with data, a form or an upload (curl refuses the command): the request is sent as %s without a body", r.Method)
		body = Body{}
	}
	r.Body = body

	// Headers curl adds, unless the command set them itself.
	add := func(name string, v Text) {
		if _, ok := r.Header(name); !ok {
			r.Headers = append(r.Headers, Header{Name: name, Value: v})
		}
	}
	if g.agentSet {
		add("User-Agent", g.agent)
	}
	if g.refSet {
		add("Referer", g.referer)
	}
	r.CookieFiles = append([]string(nil), g.cookieFs...)
	r.CookieJar = g.jar
	g.buildProxy(r, warn)
	if len(g.rng) > 0 {
		if g.upload != nil {
			warn(arg{pos: g.pos}, "--range", "--range with -T resumes an upload in curl (Content-Range), which is not converted: ignored")
		} else {
			add("Range", Concat(Lit("bytes="), g.rng))
		}
	}
	if len(g.cookies) > 0 {
		if c, ok := r.Header("Cookie"); ok {
			warn(arg{pos: g.pos}, "-b", "both -b and a Cookie header are given: both are kept, in one header")
			r.Headers = removeHeader(r.Headers, "Cookie")
			r.Headers = append(r.Headers, Header{Name: "Cookie", Value: JoinText(append([]Text{c}, g.cookies...), "; ")})
		} else {
			add("Cookie", JoinText(g.cookies, "; "))
		}
	}
	if len(g.bearer) > 0 {
		add("Authorization", Concat(Lit("Bearer "), g.bearer))
	}
	if g.auth != nil {
		if _, ok := r.Header("Authorization"); ok {
			warn(arg{pos: g.pos}, "-u", "-u is overridden by the Authorization header the command also sets")
		} else {
			a := *g.auth
			a.Digest = g.digest
			r.Auth = &a
		}
	}
	switch {
	case r.Body.Kind == BodyNone:
	case g.hasJSON():
		add("Content-Type", Lit("application/json"))
		add("Accept", Lit("application/json"))
	case len(g.data) > 0:
		add("Content-Type", Lit("application/x-www-form-urlencoded"))
	}
	if r.Body.Kind == BodyURLEncoded {
		if ct, ok := r.Header("Content-Type"); ok && !strings.HasPrefix(strings.ToLower(ct.String()), "application/x-www-form-urlencoded") {
			r.Body.Kind = BodyRaw
		}
	}
}

func (g *group) hasJSON() bool {
	for _, d := range g.data {
		if d.opt == "json" {
			return true
		}
	}
	return false
}

// dataBody joins the data options as curl does: "&" between -d pieces,
// nothing between --json pieces. It returns the pieces too, for -G.
func (g *group) dataBody(r *Request, in stdinSource, warn func(arg, string, string, ...any)) (Body, []Text) {
	var pieces []Text
	var text Text
	var files []dataItem
	json := false
	for i, d := range g.data {
		var piece Text
		switch d.opt {
		case "data-raw":
			piece = d.value.text
		case "data-urlencode":
			t, problem := urlencodeArg(d.value.text)
			if problem != "" {
				warn(d.value, "--data-urlencode", "--data-urlencode %q %s", d.value.text.String(), problem)
			}
			if len(t) == 0 {
				continue
			}
			piece = t
		case "json":
			json = true
			fallthrough
		default:
			if d.value.raw == "@-" && in.set && !in.isFile {
				// Here-string or here-document data: known text, which
				// joins the rest in command order.
				piece = in.text
				if stripsNewlines(d.opt) {
					piece = g.stripNewlines(d, piece, warn)
				}
				break
			}
			if d.value.text.HasLitPrefix("@") {
				files = append(files, d)
				continue
			}
			piece = d.value.text
		}
		if i > 0 && len(pieces) > 0 && d.opt != "json" {
			text = append(text, Segment{Lit: "&"})
		}
		text = append(text, piece...)
		pieces = append(pieces, piece)
	}
	kind := BodyURLEncoded
	if json {
		kind = BodyJSON
	}
	switch {
	case len(files) == 0:
		return Body{Kind: kind, Data: text.norm()}, pieces
	case len(files) == 1 && len(pieces) == 0:
		d := files[0]
		file := d.value.text.TrimLitPrefix("@")
		b := Body{Kind: BodyFile, File: file, StripNewlines: stripsNewlines(d.opt)}
		if file.String() == "-" {
			// Here-text was taken above: stdin is a file or the program's own.
			b = stdinBody(in)
			b.StripNewlines = b.Kind == BodyFile && stripsNewlines(d.opt)
		}
		if g.get {
			warn(d.value, "-G", "-G with data from a file is not supported: the file is sent as the body")
		}
		return b, nil
	}
	for _, d := range files {
		warn(d.value, "--"+d.opt, "data from a file (%s) mixed with other data is not supported: the file is left out", d.value.text.String())
	}
	return Body{Kind: kind, Data: text.norm()}, pieces
}

// stripsNewlines reports whether curl drops CR and LF from the contents of
// a file (or stdin) given as @file to this data option: -d and
// --data-ascii do, --data-binary, --data-urlencode and --json do not.
func stripsNewlines(opt string) bool {
	return opt == "data" || opt == "data-ascii"
}

// stripNewlines removes CR and LF from here-text t, as curl removes them
// from what -d @- reads. Newlines inside a variable's value cannot be
// removed here: a warning says so.
func (g *group) stripNewlines(d dataItem, t Text, warn func(arg, string, string, ...any)) Text {
	out := make(Text, 0, len(t))
	for _, s := range t {
		if s.Env == "" {
			s.Lit = strings.NewReplacer("\r", "", "\n", "").Replace(s.Lit)
		}
		out = append(out, s)
	}
	if !t.IsLiteral() {
		warn(d.value, "--"+d.opt, "--%s @-: carriage returns and line feeds in the value of $%s are sent, where curl would drop them", d.opt, strings.Join(t.Vars(), ", $"))
	}
	return out.norm()
}

// stdinBody is the body for "@-" and "-T -": what the shell redirects into
// curl, or the generated program's own standard input.
func stdinBody(in stdinSource) Body {
	switch {
	case in.set && in.isFile:
		if len(in.file) == 0 {
			return Body{}
		}
		return Body{Kind: BodyFile, File: in.file}
	case in.set:
		return Body{Kind: BodyRaw, Data: in.text}
	}
	return Body{Kind: BodyFile, File: Lit("-")}
}

// cutFragment removes the fragment ("#..." found in a literal part) from
// URL u, with everything after it.
func cutFragment(u Text) Text {
	for i, s := range u {
		if s.Env != "" {
			continue
		}
		if before, _, ok := strings.Cut(s.Lit, "#"); ok {
			return append(append(Text{}, u[:i]...), Lit(before)...).norm()
		}
	}
	return u
}

// uploadURL is the URL -T FILE sends to: when the URL names no file (no
// path, or a path ending in '/'), curl appends the local file's base name,
// percent-encoded, to the path.
func (g *group) uploadURL(u Text, warn func(arg, string, string, ...any)) Text {
	if len(u) == 0 || u[0].Env != "" {
		return u
	}
	first := u[0].Lit
	i := strings.Index(first, "://")
	if i < 0 {
		return u
	}
	// The path starts at the first '/' after the authority and ends at
	// '?' or '#'; without a '/', it is empty.
	hostEnd := i + 3 + strings.IndexAny(first[i+3:]+"/", "/?#")
	if hostEnd >= len(first) && len(u) > 1 {
		return u // the authority runs into a variable
	}
	pathEnd := hostEnd + strings.IndexAny(first[hostEnd:]+"?", "?#")
	if pathEnd >= len(first) && len(u) > 1 {
		return u // the path runs into a variable: whether it names a file is known only when the program runs
	}
	path := first[hostEnd:pathEnd]
	if path != "" && !strings.HasSuffix(path, "/") {
		return u
	}
	if !g.upload.text.IsLiteral() {
		warn(*g.upload, "-T", "curl appends the uploaded file's name to a URL that names no file; the name comes from a variable here, so the request goes to %q as written", u.String())
		return u
	}
	name := g.upload.text.String()
	if j := strings.LastIndexAny(name, `/\`); j >= 0 {
		name = name[j+1:]
	}
	sep := ""
	if path == "" {
		sep = "/" // the path's own '/', before the name
	}
	out := append(Text{{Lit: first[:pathEnd] + sep + escapeAll(name) + first[pathEnd:]}}, u[1:]...)
	return out.norm()
}

// escapeAll percent-encodes every byte but RFC 3986's unreserved ones, as
// curl_easy_escape does.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// withScheme adds http:// to a URL without a scheme, as curl does.
func withScheme(u Text) Text {
	if len(u) == 0 || u[0].Env != "" {
		return u
	}
	first := u[0].Lit
	if i := strings.Index(first, "://"); i > 0 && !strings.ContainsAny(first[:i], "/?#") {
		return u
	}
	return Concat(Lit("http://"), u)
}

// appendQuery adds q to the query of u. A fragment is dropped: the query
// goes before '#', and curl never sends the fragment.
func appendQuery(u, q Text) Text {
	if len(q) == 0 {
		return u
	}
	u = cutFragment(u)
	switch s := u.String(); {
	case u.ContainsLit("?") && (strings.HasSuffix(s, "?") || strings.HasSuffix(s, "&")):
		return Concat(u, q)
	case u.ContainsLit("?"):
		return Concat(u, Lit("&"), q)
	}
	return Concat(u, Lit("?"), q)
}

// proxySchemes are the proxy kinds curl speaks that the targets convert.
var proxySchemes = []string{"http", "https", "socks4", "socks4a", "socks5", "socks5h"}

// buildProxy sets r.Proxy from -x (or --socks5) and -U. A proxy without
// a scheme is http://, as in curl; -x "" turns the proxy off.
func (g *group) buildProxy(r *Request, warn func(arg, string, string, ...any)) {
	if g.proxy == nil {
		if g.proxyUsr != nil {
			warn(*g.proxyUsr, "-U", "-U without a proxy (-x) is ignored")
		}
		return
	}
	u := g.proxy.text
	if len(u) == 0 {
		return
	}
	if g.proxyAs != "" {
		u = Concat(Lit(g.proxyAs+"://"), u)
	} else if u[0].Env == "" && !strings.Contains(u[0].Lit, "://") {
		u = Concat(Lit("http://"), u)
	}
	if u[0].Env == "" {
		scheme, _, _ := strings.Cut(u[0].Lit, "://")
		if !slices.Contains(proxySchemes, strings.ToLower(scheme)) {
			warn(*g.proxy, "-x", "proxy scheme %q is not converted (known: %s): no proxy is used", scheme, strings.Join(proxySchemes, ", "))
			return
		}
	}
	r.Proxy = &Proxy{URL: u}
	if g.proxyUsr != nil {
		user, pass, ok := g.proxyUsr.text.Cut(":")
		if !ok {
			warn(*g.proxyUsr, "-U", "-U without a password: curl would prompt for one; the generated code sends an empty password")
		}
		r.Proxy.User, r.Proxy.Password = user, pass
	}
}
