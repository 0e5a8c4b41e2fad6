package codegen

import (
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// pyCookieFiles is the Python code, shared by the python and python-httpx
// programs, that reads the cookie files of curl -b FILE and chooses, for
// one URL, the Cookie header curl would send. It is written by hand
// rather than with http.cookiejar, whose MozillaCookieJar rejects files
// curl reads, orders cookies otherwise, and cannot put the command's own
// -b 'name=value' cookies after the file's in one header. Each rule below
// is curl's (lib/cookie.c), checked against curl 7.88 on loopback.
const pyCookieFiles = `

def read_cookie_files(paths):
    """The cookies of curl -b FILE, read once, in curl's Netscape format:
    one a line, seven tab-separated fields (domain, include subdomains,
    path, secure, expiry, name, value). As in curl, a file that cannot be
    read gives no cookies, "#HttpOnly_" lines are cookies, other "#" lines
    and malformed ones are skipped, and a cookie of the same name, domain
    and path as an earlier one takes its place."""
    cookies, index = [], {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("latin-1").split("\n")
        except OSError:
            continue
        for line in lines:
            line = line.rstrip("\r").lstrip(" \t")
            if line.startswith("#HttpOnly_"):
                line = line[len("#HttpOnly_"):]
            elif line.startswith("#"):
                continue
            # curl splits with strtok: a run of tabs is one separator.
            fields = [field for field in line.split("\t") if field]
            if len(fields) > 2 and fields[2] in ("TRUE", "FALSE"):
                fields.insert(2, "/")  # the old format, without a path
            if len(fields) == 6:
                fields.append("")  # no value
            if len(fields) != 7 or not (fields[4].isascii() and fields[4].isdigit()):
                continue
            domain, subdomains, cpath, secure, expiry, name, value = fields
            if domain.startswith("."):
                domain = domain[1:]
            cookie = (domain, subdomains.upper() == "TRUE", cpath, cookie_path(cpath),
                      secure.upper() == "TRUE", int(expiry), name, value)
            key = (name.lower(), domain.lower(), cookie[1], cookie[3].lower())
            if key in index:
                cookies[index[key]] = cookie
            else:
                index[key] = len(cookies)
                cookies.append(cookie)
    return cookies


def cookie_path(cpath):
    """A cookie's path as curl matches it: no quotes, no trailing "/",
    and "/" for one that does not start with "/"."""
    cpath = cpath.removeprefix('"').removesuffix('"')
    if not cpath.startswith("/"):
        return "/"
    return cpath[:-1] if cpath.endswith("/") else cpath


def cookie_header(cookies, url, own=None):
    """The Cookie header curl sends to url with -b FILE, or None: the
    file's cookies that match the URL's host and path and have not
    expired (a secure one only over https or to the local host), longest
    path first, then longest domain, then longest name, then the last
    read; then own, the command's own -b 'name=value' cookies."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path if parts.path.startswith("/") else "/"
    secure = parts.scheme.lower() == "https" or host in ("localhost", "127.0.0.1", "::1")
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    now = time.time()
    chosen = []
    for cookie in reversed(cookies):
        domain, subdomains, cpath, spath, only_secure, expiry, name, value = cookie
        domain = domain.lower()
        if not (host == domain or (subdomains and not is_ip and host.endswith("." + domain))):
            continue
        if spath != "/" and not (path.startswith(spath) and path[len(spath):len(spath) + 1] in ("", "/")):
            continue
        if (only_secure and not secure) or (expiry and expiry < now):
            continue
        chosen.append(cookie)
    chosen.sort(key=lambda c: (-len(c[2]), -len(c[0]), -len(c[6])))  # path, domain, name
    pairs = [f"{c[6]}={c[7]}" for c in chosen]
    if own:
        pairs.append(own)
    return "; ".join(pairs) or None
`

// pyCookieSetup writes the lines of main() that read r's cookie files
// and put the cookies that match the URL in the headers dict, before the
// command's own: cookies holds them, for a program that chooses them
// again on each redirect hop, and ownCookies the command's own Cookie
// header (None without one). str renders a Text. It returns whether r
// reads cookie files.
func pyCookieSetup(w func(string, ...any), r *curl.Request, str func(curl.Text) string) bool {
	if len(r.CookieFiles) == 0 {
		return false
	}
	files := make([]string, len(r.CookieFiles))
	for i, f := range r.CookieFiles {
		files[i] = str(curl.Lit(f))
	}
	name, own := pyCookieName(r), "None"
	if _, ok := r.Header("Cookie"); ok {
		own = fmt.Sprintf("headers.get(%s)", jsonQuote(name))
	}
	w("    # curl -b FILE: the cookies of the files that match the URL, before the\n")
	w("    # command's own, in one Cookie header (the files are read once).\n")
	w("    cookies = read_cookie_files([%s])\n", strings.Join(files, ", "))
	w("    own_cookies = %s\n", own)
	w("    cookie = cookie_header(cookies, url, own_cookies)\n")
	w("    if cookie:\n        headers[%s] = cookie\n", jsonQuote(name))
	return true
}

// pyCookieName is the name of r's Cookie header as the headers dict holds
// it: the command's spelling, else "Cookie".
func pyCookieName(r *curl.Request) string {
	for _, h := range headers(r) {
		if strings.EqualFold(h.Name, "Cookie") {
			return h.Name
		}
	}
	return "Cookie"
}

// pyProxyURL writes the lines of main() that set proxy to the URL of r's
// proxy, for the python and python-httpx programs: a URL read from the
// environment without a scheme gets http://, as curl gives it. With
// userinfo, -U's credentials go in the URL, percent-encoded (requests
// takes them from there). It returns whether the program calls quote.
func pyProxyURL(w func(string, ...any), r *curl.Request, str func(curl.Text) string, userinfo bool) bool {
	px := r.Proxy
	w("    proxy = %s  # curl -x\n", str(px.URL))
	if len(px.URL) > 0 && px.URL[0].Env != "" {
		w("    if \"://\" not in proxy:\n        proxy = \"http://\" + proxy  # as curl reads a proxy without a scheme\n")
	}
	if !userinfo || (len(px.User) == 0 && len(px.Password) == 0) {
		return false
	}
	w("    # curl -U: the proxy's credentials, percent-encoded in its URL.\n")
	w("    scheme, _, rest = proxy.partition(\"://\")\n")
	w("    proxy = scheme + \"://\" + quote(%s, safe=\"\") + \":\" + quote(%s, safe=\"\") + \"@\" + rest\n", str(px.User), str(px.Password))
	return true
}
