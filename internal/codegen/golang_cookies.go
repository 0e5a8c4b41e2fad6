package codegen

import (
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// goCookies writes the statements that start the request's cookie engine,
// as curl -b FILE and -c FILE turn curl's on: jar holds the cookies of
// the files and those the responses set, and with -c it is written to
// the jar file when the request function returns, whatever its outcome.
// It reports whether the request has a cookie engine; the caller then
// sends the request through cookieTransport{jar: jar, ...}.
func goCookies(g *goProgram, r *curl.Request) bool {
	if len(r.CookieFiles) == 0 && r.CookieJar == "" {
		return false
	}
	g.needs["cookies"] = true
	g.use("cmp", "fmt", "net", "net/url", "slices", "strconv", "strings", "time")
	if len(r.CookieFiles) > 0 {
		g.needs["cookieFiles"] = true
		names := make([]string, len(r.CookieFiles))
		for i, f := range r.CookieFiles {
			names[i] = strconv.Quote(f)
		}
		g.w("\t// curl -b FILE: the cookies of the file that match each request (each\n\t// redirect too) are sent before the command's own; those the responses\n\t// set are kept and sent too, as curl's cookie engine does.\n")
		g.w("\tjar := readCookieFiles(%s)\n", strings.Join(names, ", "))
	} else {
		g.w("\t// curl -c: the cookies the responses set are kept, and sent on the\n\t// redirects that follow, as curl's cookie engine does.\n")
		g.w("\tjar := &cookieJar{}\n")
	}
	if r.CookieJar != "" {
		g.needs["cookieJar"] = true
		g.w("\t// curl -c: once the request is done, its cookies are written to the jar.\n")
		g.w("\tdefer jar.save(%s)\n", strconv.Quote(r.CookieJar))
	}
	g.w("\n")
	return true
}

// goCookieCode is the cookie engine of the programs: the cookies of a
// request, those of the cookie files and those the responses set, kept
// and chosen as curl 7.88 does (lib/cookie.c). The rules are curl's, down
// to its order, so that the program sends the Cookie header curl sends;
// net/http/cookiejar's are RFC 6265's, and it cannot list its cookies for
// the jar file.
const goCookieCode = `
// cookieTransport sends each request, each redirect included, with the
// cookies of jar that curl sends to its host and path, and keeps the
// cookies its response sets. The command's own cookies (curl -b
// 'name=value'), already in the request's Cookie header, follow the jar's.
type cookieTransport struct {
	jar  *cookieJar
	base http.RoundTripper
}

func (t cookieTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if cookies := t.jar.header(req); cookies != "" {
		if own := req.Header.Get("Cookie"); own != "" {
			cookies += "; " + own
		}
		req = req.Clone(req.Context()) // a RoundTripper leaves its caller's request alone
		req.Header.Set("Cookie", cookies)
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		t.jar.keep(req, resp.Header.Values("Set-Cookie"))
	}
	return resp, err
}

// cookieJar holds the cookies of one request, oldest first: those of its
// cookie files, then those its responses set. It serves one request at a
// time.
type cookieJar struct {
	cookies []cookie
}

// cookie is one cookie of a cookie file or of a Set-Cookie header.
type cookie struct {
	domain     string // without a leading dot
	subdomains bool   // the subdomains of domain get the cookie too
	path       string
	secure     bool  // sent over https only (and to this machine)
	httpOnly   bool  // written to a jar with the prefix #HttpOnly_
	expires    int64 // Unix seconds; 0 for a session cookie
	name       string
	value      string
}

// expired reports whether c's time is over.
func (c cookie) expired(now int64) bool { return c.expires != 0 && c.expires < now }

// add keeps c in the place of the cookie with its name, domain and path,
// if there is one, or after the others; an expired c only removes it.
func (j *cookieJar) add(c cookie) {
	// The name prefixes promise what curl checks.
	name := strings.ToLower(c.name)
	if strings.HasPrefix(name, "__secure-") && !c.secure ||
		strings.HasPrefix(name, "__host-") && !(c.secure && c.path == "/" && !c.subdomains) {
		return
	}
	i := slices.IndexFunc(j.cookies, func(o cookie) bool {
		return strings.EqualFold(o.name, c.name) && strings.EqualFold(o.domain, c.domain) &&
			o.subdomains == c.subdomains && strings.EqualFold(cookiePath(o.path), cookiePath(c.path))
	})
	switch {
	case c.expired(time.Now().Unix()):
		if i >= 0 {
			j.cookies = slices.Delete(j.cookies, i, i+1)
		}
	case i >= 0:
		j.cookies[i] = c
	default:
		j.cookies = append(j.cookies, c)
	}
}

// cookiePath is a cookie's path as curl matches it: unquoted, "/" when it
// does not start with one, and without one trailing '/'.
func cookiePath(p string) string {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "\""), "\"")
	if !strings.HasPrefix(p, "/") {
		return "/"
	}
	return strings.TrimSuffix(p, "/")
}

// cookieHost is the host name cookies are chosen and set for: that of the
// request's Host header, else of its URL.
func cookieHost(req *http.Request) string {
	host := cmp.Or(req.Host, req.URL.Host)
	return strings.ToLower((&url.URL{Host: host}).Hostname())
}

// secureOrigin reports whether curl takes req's connection for a secure
// one: https, or a connection to this machine.
func secureOrigin(req *http.Request) bool {
	host := cookieHost(req)
	return req.URL.Scheme == "https" || host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// header returns the cookies of the jar that curl sends with req, as one
// Cookie header value ("" for none), in curl's order: the longest path
// first, then the longest domain, the longest name, and the newest cookie.
func (j *cookieJar) header(req *http.Request) string {
	host := cookieHost(req)
	isIP := net.ParseIP(host) != nil
	path := req.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		path = "/"
	}
	secure := secureOrigin(req)
	now := time.Now().Unix()
	var sent []int
	for i, c := range j.cookies {
		domain := strings.ToLower(c.domain)
		p := cookiePath(c.path)
		switch {
		case c.secure && !secure, c.expired(now):
		case host != domain && (!c.subdomains || isIP || !strings.HasSuffix(host, "."+domain)):
		case len(p) > 1 && (!strings.HasPrefix(path, p) || len(path) > len(p) && path[len(p)] != '/'):
		default:
			sent = append(sent, i)
		}
	}
	slices.SortFunc(sent, func(a, b int) int {
		ca, cb := j.cookies[a], j.cookies[b]
		return cmp.Or(len(cb.path)-len(ca.path), len(cb.domain)-len(ca.domain), len(cb.name)-len(ca.name), b-a)
	})
	pairs := make([]string, len(sent))
	for i, k := range sent {
		pairs[i] = j.cookies[k].name + "=" + j.cookies[k].value
	}
	return strings.Join(pairs, "; ")
}

// keep adds the cookies of the Set-Cookie header values of a response to
// req, read as curl reads them: a cookie for a domain the host is not in,
// or a secure one from an insecure origin, is refused.
func (j *cookieJar) keep(req *http.Request, setCookies []string) {
	host := cookieHost(req)
	for _, line := range setCookies {
		if c, ok := parseSetCookie(line, host, req.URL.EscapedPath(), secureOrigin(req)); ok {
			j.add(c)
		}
	}
}

// parseSetCookie reads a Set-Cookie header value that host sent for a
// request to path, as curl does: Max-Age wins over Expires, a Domain
// makes a cookie for the domain and its subdomains (but for an IP
// address, which keeps it to itself), and without a Path the cookie's
// path is the request's up to its last '/'.
func parseSetCookie(line, host, path string, secure bool) (cookie, bool) {
	attrs := strings.Split(line, ";")
	name, value, ok := strings.Cut(attrs[0], "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return cookie{}, false
	}
	c := cookie{domain: host, name: name, value: strings.TrimSpace(value)}
	var maxAge, expires string
	for _, attr := range attrs[1:] {
		k, v, _ := strings.Cut(attr, "=")
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "path":
			c.path = v
		case "domain":
			domain := strings.ToLower(strings.TrimPrefix(v, "."))
			switch {
			case domain == "":
			case net.ParseIP(host) != nil:
				if domain != host {
					return cookie{}, false
				}
			case domain == host || strings.HasSuffix(host, "."+domain):
				c.domain, c.subdomains = domain, true
			default:
				return cookie{}, false
			}
		case "max-age":
			maxAge = v
		case "expires":
			expires = v
		case "secure":
			if !secure {
				return cookie{}, false
			}
			c.secure = true
		case "httponly":
			c.httpOnly = true
		}
	}
	if c.path == "" {
		c.path = "/"
		if i := strings.LastIndex(path, "/"); i > 0 {
			c.path = path[:i+1]
		}
	}
	switch {
	case maxAge != "":
		// A Max-Age that is not a positive number expires the cookie now.
		c.expires = 1
		if n, err := strconv.ParseInt(maxAge, 10, 64); err == nil && n > 0 {
			c.expires = time.Now().Unix() + min(n, 1<<40)
		}
	case expires != "":
		if t, ok := parseCookieDate(expires); ok {
			c.expires = max(1, t.Unix())
		}
	}
	return c, true
}

// parseCookieDate reads the date of an Expires attribute in the formats
// servers send: HTTP's three, and the Netscape one with dashes.
func parseCookieDate(v string) (time.Time, bool) {
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	for _, layout := range []string{"Mon, 02-Jan-2006 15:04:05 MST", "Mon, 02 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
`

// goCookieFileCode reads curl's cookie files (Netscape format) as curl
// 7.88 does.
const goCookieFileCode = `
// readCookieFiles reads curl's cookie files ("-" is standard input) as
// curl does: a file that cannot be read adds no cookies, a line that is
// not a cookie is skipped, and a cookie with the name, domain and path of
// an earlier one takes its place.
func readCookieFiles(names ...string) *cookieJar {
	jar := &cookieJar{}
	for _, name := range names {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if c, ok := parseCookieLine(line); ok {
				jar.add(c)
			}
		}
	}
	return jar
}

// parseCookieLine reads one line of a cookie file: TAB-separated domain,
// includeSubdomains, path, secure, expiry, name and value. A line starting
// with #HttpOnly_ is a cookie, any other starting with # a comment.
func parseCookieLine(line string) (cookie, bool) {
	line, _, _ = strings.Cut(line, "\r")
	line = strings.TrimLeft(line, " \t")
	line, httpOnly := strings.CutPrefix(line, "#HttpOnly_")
	if strings.HasPrefix(line, "#") {
		return cookie{}, false
	}
	// curl skips empty fields, takes a missing path as "/" and a missing
	// value as empty.
	f := strings.FieldsFunc(line, func(r rune) bool { return r == '\t' })
	if len(f) > 2 && (f[2] == "TRUE" || f[2] == "FALSE") {
		f = slices.Insert(f, 2, "/")
	}
	if len(f) == 6 {
		f = append(f, "")
	}
	if len(f) != 7 {
		return cookie{}, false
	}
	expires, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil || expires < 0 {
		return cookie{}, false
	}
	return cookie{
		domain:     strings.TrimPrefix(f[0], "."),
		subdomains: strings.EqualFold(f[1], "TRUE"),
		path:       f[2],
		secure:     strings.EqualFold(f[3], "TRUE"),
		httpOnly:   httpOnly,
		expires:    expires,
		name:       f[5],
		value:      f[6],
	}, true
}
`

// goCookieJarCode writes the jar of curl -c.
const goCookieJarCode = `
// save writes the jar's cookies to the file name ("-" is standard output)
// as curl -c writes them, newest first, in curl's Netscape format; a file
// that cannot be written is warned about, as curl does.
func (j *cookieJar) save(name string) {
	var b strings.Builder
	b.WriteString("# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n" +
		"# This file was generated by libcurl! Edit at your own risk.\n\n")
	now := time.Now().Unix()
	for _, c := range slices.Backward(j.cookies) {
		if c.expired(now) {
			continue
		}
		domain := c.domain
		if c.subdomains {
			domain = "." + domain
		}
		if c.httpOnly {
			domain = "#HttpOnly_" + domain
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", domain, strings.ToUpper(strconv.FormatBool(c.subdomains)),
			c.path, strings.ToUpper(strconv.FormatBool(c.secure)), c.expires, c.name, c.value)
	}
	var err error
	if name == "-" {
		_, err = io.WriteString(os.Stdout, b.String())
	} else {
		err = os.WriteFile(name, []byte(b.String()), 0o666)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: failed to save cookies in %s: %v\n", name, err)
	}
}
`
