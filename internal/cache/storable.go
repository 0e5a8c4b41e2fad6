package cache

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// KeyOf returns the primary cache key of r (RFC 9111 2): scheme, the
// lower-cased host (r.Host, else r.URL.Host) and the request target
// exactly as received (path and raw query), so that two spellings of a
// URL the origin might treat differently are never confused. The method
// is not part of the key: GET and HEAD share entries. Neither is the
// route, so a purge by URL reaches every route that cached it.
func KeyOf(r *http.Request, scheme string) string {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	return makeKey(scheme, host, requestTarget(r))
}

func makeKey(scheme, host, target string) string {
	return strings.ToLower(scheme) + "://" + strings.ToLower(host) + target
}

// requestTarget returns the path and query of r as received. An
// absolute-form target (a forward-proxy request) keeps what follows
// its authority.
func requestTarget(r *http.Request) string {
	t := r.RequestURI
	if t == "" {
		return r.URL.RequestURI()
	}
	if strings.HasPrefix(t, "/") || t == "*" {
		return t
	}
	if i := strings.Index(t, "://"); i >= 0 {
		rest := t[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			if rest[j] == '?' {
				return "/" + rest[j:]
			}
			return rest[j:]
		}
		return "/"
	}
	return t
}

// understood holds the final status codes whose semantics holdfast
// knows (RFC 9110 15), so that it may store them (RFC 9111 3: "the
// cache understands the response status code" is required for 206 and
// 304 and under must-understand; holdfast asks it of every response).
// 206 and 304 are left out: holdfast stores no partial content, and a
// 304 only refreshes what is stored.
var understood = map[int]bool{
	200: true, 201: true, 202: true, 203: true, 204: true, 205: true,
	300: true, 301: true, 302: true, 303: true, 307: true, 308: true,
	// Of the errors, only those that say something of the resource itself
	// and that RFC 9110 makes heuristically cacheable (not found, gone,
	// URI too long, not implemented): a 400, a 405 or a 500 says
	// something of one request, and stored it would let one client's
	// crafted request answer everyone (cache poisoning by error page).
	404: true, 410: true, 414: true, 501: true,
}

// Storable reports whether a shared cache may store resp, the answer
// to r (RFC 9111 3), and when not, why, for the logs:
//
//   - r is a GET (a HEAD's answer has no body to store);
//   - the status is final and understood, and not 206 (no partial
//     storage) or 304;
//   - neither r nor resp has no-store (must-understand with an
//     understood status overrides the response's no-store), and resp has
//     no private (qualified forms are read as unqualified: stricter);
//   - an Authorization in r needs must-revalidate, public or s-maxage in
//     resp (RFC 9111 3.5);
//   - resp has no Vary: *, which no request could ever match;
//   - resp has a Set-Cookie only with public or s-maxage. RFC 9111 7.1
//     lets a cache store Set-Cookie, but a cookie meant for one client
//     replayed to the next is the classic shared-cache leak, so holdfast
//     stores one only when the origin says explicitly that the response
//     is for everyone;
//   - resp has explicit freshness (s-maxage, max-age, Expires, public),
//     or a heuristically cacheable status with a validator (ETag or
//     Last-Modified) so that, even with no freshness, it can be
//     revalidated cheaply.
func Storable(r *http.Request, resp *http.Response) (ok bool, why string) {
	if r.Method != http.MethodGet {
		return false, "method " + r.Method
	}
	if resp.StatusCode < 200 {
		return false, "status not final"
	}
	if resp.StatusCode == http.StatusPartialContent {
		return false, "partial content"
	}
	rc, cc := ParseCacheControl(r.Header), ParseCacheControl(resp.Header)
	if rc.Has("no-store") {
		return false, "request no-store"
	}
	known := understood[resp.StatusCode]
	if cc.Has("must-understand") {
		if !known {
			return false, "must-understand with status " + http.StatusText(resp.StatusCode)
		}
	} else if cc.Has("no-store") {
		return false, "response no-store"
	}
	if !known {
		return false, "status " + statusString(resp.StatusCode) + " not cacheable"
	}
	if cc.Has("private") {
		return false, "response private"
	}
	explicitShared := cc.Has("public") || cc.Has("s-maxage")
	if r.Header.Get("Authorization") != "" && !explicitShared && !cc.Has("must-revalidate") {
		return false, "authorization without public, s-maxage or must-revalidate"
	}
	for _, v := range resp.Header.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			if trimOWS(name) == "*" {
				return false, "vary *"
			}
		}
	}
	if len(resp.Header.Values("Set-Cookie")) > 0 && !explicitShared {
		return false, "set-cookie without public or s-maxage"
	}
	if cc.Has("s-maxage") || cc.Has("max-age") || cc.Has("public") || len(resp.Header.Values("Expires")) > 0 {
		return true, ""
	}
	if heuristicStatus[resp.StatusCode] && (resp.Header.Get("ETag") != "" || resp.Header.Get("Last-Modified") != "") {
		return true, ""
	}
	return false, "no freshness information and no validator"
}

func statusString(code int) string {
	return strings.TrimSpace(http.StatusText(code) + " (" + strconv.Itoa(code) + ")")
}

// hopByHop are the fields a proxy never stores or forwards (RFC 9110
// 7.6.1), with Content-Length, which WriteTo recomputes from the body.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length",
}

// storedHeader returns a copy of h without hop-by-hop fields, those
// named by Connection included (RFC 9111 3.1).
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = trimOWS(name); name != "" {
				out.Del(textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	for _, k := range hopByHop {
		out.Del(k)
	}
	return out
}

// sameHostKey returns the primary key of the URL in a Location or
// Content-Location value of a response to r, resolved against r's URL,
// when it has r's host (RFC 9111 4.4 invalidates no other: a response
// must not be able to evict another origin's entries).
func sameHostKey(r *http.Request, scheme, ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	base := &url.URL{Scheme: scheme, Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	abs := base.ResolveReference(u)
	if !strings.EqualFold(abs.Host, host) || !strings.EqualFold(abs.Scheme, scheme) {
		return "", false
	}
	return makeKey(scheme, host, abs.RequestURI()), true
}
