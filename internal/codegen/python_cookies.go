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
    cookies = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("latin-1").split("\n")
        except OSError:
            continue
        for line in lines:
            line = line.rstrip("\r").lstrip(" \t")
            httponly = line.startswith("#HttpOnly_")
            if httponly:
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
            put_cookie(cookies, (domain, subdomains.upper() == "TRUE", cpath, cookie_path(cpath),
                                 secure.upper() == "TRUE", int(expiry), name, value, httponly))
    return cookies


def put_cookie(cookies, cookie):
    """Adds cookie to cookies, in the place of the one of the same name,
    domain and path if there is one, as curl replaces it."""
    def key(c):
        return (c[6].lower(), c[0].lower(), c[1], c[3].lower())

    for i, held in enumerate(cookies):
        if key(held) == key(cookie):
            cookies[i] = cookie
            return
    cookies.append(cookie)


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
    secure = secure_origin(parts)
    is_ip = is_ip_address(host)
    now = time.time()
    chosen = []
    for cookie in reversed(cookies):
        domain, subdomains, cpath, spath, only_secure, expiry, name, value, _ = cookie
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


def secure_origin(parts):
    """Whether curl sends and accepts secure cookies for a URL (split):
    over https, or to the local host."""
    return parts.scheme.lower() == "https" or (parts.hostname or "").lower() in ("localhost", "127.0.0.1", "::1")


def is_ip_address(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
`

// pyCookieSetup writes the lines of main() that read r's cookie files
// and put the cookies that match the URL in the headers dict, before the
// command's own: cookies holds them, for a program that chooses them
// again on each redirect hop and keeps those the responses set (curl -c),
// and ownCookies the command's own Cookie header (None without one). str
// renders a Text. It returns whether r reads cookie files or writes a
// jar: whether the program holds cookies.
func pyCookieSetup(w func(string, ...any), r *curl.Request, str func(curl.Text) string) bool {
	if len(r.CookieFiles) == 0 && r.CookieJar == "" {
		return false
	}
	name, own := pyCookieName(r), "None"
	if _, ok := r.Header("Cookie"); ok {
		own = fmt.Sprintf("headers.get(%s)", jsonQuote(name))
	}
	if len(r.CookieFiles) == 0 {
		w("    # curl -c: the cookies the responses set, kept as curl keeps them, and\n")
		w("    # sent on later redirect hops before the command's own.\n")
		w("    cookies = []\n")
		w("    own_cookies = %s\n", own)
		return true
	}
	files := make([]string, len(r.CookieFiles))
	for i, f := range r.CookieFiles {
		files[i] = str(curl.Lit(f))
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

// pyCookieJar is the Python code, shared by the python and python-httpx
// programs, of curl -c FILE: it keeps the cookies every response sets, as
// curl's cookie engine does (lib/cookie.c), and writes them all in curl's
// Netscape format, byte for byte as curl 7.88 writes it. The cookies are
// the tuples of pyCookieFiles, so that the program sends them again on a
// later redirect hop with cookie_header.
const pyCookieJar = `

def store_cookies(cookies, url, set_cookies):
    """Keeps in cookies those that a response from url sets (the values
    of its Set-Cookie headers), as curl keeps them: one of the same name,
    domain and path takes the place of the one held, and an expired one
    (Max-Age <= 0, Expires in the past) removes it."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for line in set_cookies:
        pair, *attributes = line.split(";")
        name, has_value, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not has_value or not name:
            continue
        domain, subdomains, cpath, secure, httponly = host, False, None, False, False
        expires = max_age = None
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            key, val = key.strip().lower(), val.strip()
            if key == "domain" and val:
                val = val.removeprefix(".").lower()
                if is_ip_address(host):
                    if val != host:
                        break  # an IP address accepts no other domain
                elif host == val or host.endswith("." + val):
                    domain, subdomains = val, True
                else:
                    break  # a domain the host is not in
            elif key == "path" and val:
                cpath = val
            elif key == "secure":
                if not secure_origin(parts):
                    break  # curl takes secure cookies from secure origins only
                secure = True
            elif key == "httponly":
                httponly = True
            elif key == "max-age" and val.lstrip("-").isdigit():
                max_age = int(val)
            elif key == "expires":
                try:
                    expires = int(email.utils.parsedate_to_datetime(val).timestamp())
                except (TypeError, ValueError):
                    pass
        else:
            if cpath is None:
                # curl's default path: the request's, up to its last "/" included.
                request_path = parts.path if parts.path.startswith("/") else "/"
                cpath = request_path[:request_path.rfind("/") + 1]
            if max_age is not None:  # Max-Age wins over Expires
                expires = int(time.time()) + max_age if max_age > 0 else 1
            cookie = (domain, subdomains, cpath, cookie_path(cpath), secure, expires or 0, name, value, httponly)
            put_cookie(cookies, cookie)
            if cookie[5] and cookie[5] <= time.time():
                cookies.remove(cookie)


def write_cookie_jar(path, cookies):
    """Writes cookies that have not expired to path as curl -c writes its
    jar: curl's header, then one cookie a line, the newest first."""
    now = time.time()
    lines = [
        "# Netscape HTTP Cookie File\n",
        "# https://curl.se/docs/http-cookies.html\n",
        "# This file was generated by libcurl! Edit at your own risk.\n\n",
    ]
    for domain, subdomains, cpath, _, secure, expiry, name, value, httponly in reversed(cookies):
        if expiry and expiry <= now:
            continue
        fields = ["." + domain if subdomains else domain, "TRUE" if subdomains else "FALSE", cpath,
                  "TRUE" if secure else "FALSE", str(expiry), name, value]
        lines.append(("#HttpOnly_" if httponly else "") + "\t".join(fields) + "\n")
    try:
        with open(path, "w", encoding="latin-1", newline="") as f:
            f.writelines(lines)
    except OSError as err:
        print(f"warning: cannot write the cookie jar {path}: {err.strerror}", file=sys.stderr)
`
