package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unsafe"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 and the
// ones that by custom act like them; they describe one connection and are
// never forwarded.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers from h, and every header named
// in its Connection header.
func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = textproto(strings.TrimSpace(name)); name != "" {
				delete(h, name)
			}
		}
	}
	if len(h) > len(hopHeaders) {
		for _, k := range hopHeaders {
			delete(h, k)
		}
		return
	}
	// A small header is cheaper to look through than to probe once for
	// every hop-by-hop name (a hash each).
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// isHopHeader reports whether k is one of hopHeaders.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func textproto(s string) string { return http.CanonicalHeaderKey(s) }

// field is h.Get(key) for a key written in canonical form, as the keys of
// every header holdfast reads are: it skips Get's canonicalization of the
// key, the larger part of its cost.
func field(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// upgradeType returns the protocol a request or response asks to upgrade
// to, or "".
func upgradeType(h http.Header) string {
	if !headerHasToken(h, "Connection", "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// trustedSet is the set of networks whose forwarding headers are believed.
type trustedSet []netip.Prefix

func (t trustedSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For, -Proto, -Host, X-Real-IP, Forwarded
// and Via on the outgoing header (made by outgoingHeader, so without their
// lookalikes) from the client request r, and
// X-Request-Id to reqID. Headers sent by a client are extended only when
// the client's address is trusted; otherwise they are replaced, so that
// nobody can forge the client address upstreams see.
//
// The values go in vals when it is not nil (the exchange's own array, so
// that they cost no allocation), in a new array otherwise.
func setForwarded(out http.Header, r *http.Request, trusted trustedSet, reqID string, vals *[forwardingFields]string) {
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(clientIP)
	trust := addr.IsValid() && trusted.contains(addr)

	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	// Every field set here gets a one-value slice of one shared array:
	// one allocation for all of them, where Header.Set makes one each.
	// The keys are written in canonical form.
	if vals == nil {
		vals = new([forwardingFields]string)
	}
	n := 0
	set := func(k, v string) {
		vals[n] = v
		out[k] = vals[n : n+1 : n+1]
		n++
	}
	if !trust || field(out, "X-Real-Ip") == "" {
		// Backends commonly take X-Real-IP as the client's address: only a
		// trusted proxy may say what it is.
		set("X-Real-Ip", clientIP)
	}
	if trust {
		if prior := out.Values("X-Forwarded-For"); len(prior) > 0 {
			set("X-Forwarded-For", strings.Join(prior, ", ")+", "+clientIP)
		} else {
			set("X-Forwarded-For", clientIP)
		}
		if field(out, "X-Forwarded-Proto") == "" {
			set("X-Forwarded-Proto", proto)
		}
		if field(out, "X-Forwarded-Host") == "" {
			set("X-Forwarded-Host", r.Host)
		}
	} else {
		set("X-Forwarded-For", clientIP)
		set("X-Forwarded-Proto", proto)
		set("X-Forwarded-Host", r.Host)
		delete(out, "Forwarded")
	}

	elem := "for=" + forwardedNode(addr, clientIP) + ";host=" + quoteForwarded(r.Host) + ";proto=" + proto
	if prior := out["Forwarded"]; len(prior) > 0 {
		set("Forwarded", strings.Join(prior, ", ")+", "+elem)
	} else {
		set("Forwarded", elem)
	}

	via := "1.1 holdfast"
	if r.ProtoMajor == 2 {
		via = "2 holdfast"
	}
	if prior := out["Via"]; len(prior) > 0 {
		set("Via", strings.Join(prior, ", ")+", "+via)
	} else {
		set("Via", via)
	}
	set("X-Request-Id", reqID)
}

// forwardingFields is the most fields setForwarded adds.
const forwardingFields = 7

// cloneHeader copies h as h.Clone does (the values of every field in one
// shared array), into a map with room for extra fields more, so that
// adding the forwarding fields does not grow it again. When dst is not nil
// it is emptied and filled instead of a new map, and the values go in vals
// when it is large enough; the map and the values' array are returned.
func cloneHeader(dst, h http.Header, vals []string, extra int) (http.Header, []string) {
	return copyHeader(dst, h, vals, extra, false)
}

// copyHeader is cloneHeader, and with forward set it leaves out the
// hop-by-hop fields and the forwarding lookalikes (outgoingHeader).
func copyHeader(dst, h http.Header, vals []string, extra int, forward bool) (http.Header, []string) {
	nv := 0
	for _, vv := range h {
		nv += len(vv)
	}
	if cap(vals) < nv {
		vals = make([]string, nv)
	}
	vals = vals[:nv]
	if dst == nil {
		dst = make(http.Header, len(h)+extra)
	} else {
		clear(dst)
	}
	sv := vals
	for k, vv := range h {
		if forward && (isHopHeader(k) || isLookalike(k)) {
			continue
		}
		if vv == nil {
			// Kept as nil, as Clone keeps it: a field that is set but
			// must not be sent.
			dst[k] = nil
			continue
		}
		n := copy(sv, vv)
		dst[k] = sv[:n:n]
		sv = sv[n:]
	}
	return dst, vals
}

// forwardedNode formats a node for RFC 7239: IPv6 in quotes and brackets.
func forwardedNode(a netip.Addr, raw string) string {
	if a.IsValid() && a.Unmap().Is6() {
		return `"[` + a.String() + `]"`
	}
	if a.IsValid() {
		// raw is already the address's text when the peer's address came
		// from the socket: give it back rather than a new string.
		var buf [len("255.255.255.255")]byte
		if text := a.Unmap().AppendTo(buf[:0]); string(text) == raw {
			return raw
		}
		return a.Unmap().String()
	}
	return quoteForwarded(raw)
}

// quoteForwarded returns s as an RFC 7239 value: a token as it is, anything
// else (an address with a port, say) as a quoted string.
func quoteForwarded(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			b := make([]byte, 0, len(s)+4)
			b = append(b, '"')
			for j := 0; j < len(s); j++ {
				if s[j] == '"' || s[j] == '\\' {
					b = append(b, '\\')
				}
				b = append(b, s[j])
			}
			return string(append(b, '"'))
		}
	}
	return s
}

// setRequestID sets x's request ID: the client's X-Request-Id when it is
// sane (at most 128 characters of letters, digits and -_.:), or a new
// random one, whose header value it keeps too (made in the same
// allocation as its text).
func (x *exchange) setRequestID(h http.Header) {
	if v := field(h, "X-Request-Id"); v != "" && len(v) <= 128 && validID(v) {
		x.reqID = v
		return
	}
	id := newID()
	x.reqID, x.reqIDVal = id.val[0], id.val[:]
}

func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// idText is a new request ID: its text, and a header value holding it.
// Neither is ever written to once made, so a header may own val.
type idText struct {
	val [1]string
	b   [16]byte
}

func newID() *idText {
	id := new(idText)
	v := rand.Uint64()
	for i := range id.b {
		id.b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	id.val[0] = unsafe.String(&id.b[0], len(id.b))
	return id
}

// viaResponse is the Via element holdfast adds to the responses it
// forwards (RFC 9110 section 7.6.3): the protocol it received them in, from
// an upstream, is always HTTP/1.1.
const viaResponse = "1.1 holdfast"

// viaResponseOnly is the Via of a response that had none, shared by every
// response: net/http only reads header values, and nothing in holdfast
// changes this one after it is set.
var viaResponseOnly = []string{viaResponse}

// copyResponseHeader copies an upstream response's header (hop-by-hop
// fields already removed) to the client's, as it is: a representation
// header the upstream did not send is not invented here. net/http's server
// would otherwise sniff a Content-Type from the body, even with
// X-Content-Type-Options: nosniff; a present key with no value stops it
// and writes nothing. Via gets holdfast's element.
func copyResponseHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
	finishResponseHeader(dst, src)
}

// finishResponseHeader adds to dst, a copy of the upstream's header src or
// src itself, what copyResponseHeader adds beyond the copy.
func finishResponseHeader(dst, src http.Header) {
	if _, ok := src["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
	if prior := src["Via"]; len(prior) > 0 {
		dst["Via"] = []string{strings.Join(prior, ", ") + ", " + viaResponse}
	} else {
		dst["Via"] = viaResponseOnly
	}
}

// isLookalike reports whether k spells a forwarding header with
// underscores (X_Real_IP, X_Forwarded_For): CGI-style backends (PHP-FPM,
// WSGI) read both spellings as the same variable, so a client could set
// through one what holdfast controls in the other.
func isLookalike(k string) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	switch http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")) {
	case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded", "Via":
		return true
	}
	return false
}

// outgoingHeader copies the client's header h for the upstream, as
// cloneHeader does, less what is never forwarded: the hop-by-hop fields
// and lookalikes of the forwarding fields (isLookalike) are left out as
// the copy is made, and the fields the Connection field names are then
// deleted from the copy, as removeHopHeaders does: the work grows with
// the header's size alone, however many fields and names a client sends
// (matching every field against every name would not).
func outgoingHeader(dst, h http.Header, vals []string, extra int) (http.Header, []string) {
	dst, vals = copyHeader(dst, h, vals, extra, true)
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto(strings.TrimSpace(name)); name != "" {
				delete(dst, name)
			}
		}
	}
	return dst, vals
}

// clientIP returns the address of the client that sent r: the peer's,
// or, when the peer is a trusted proxy, the last address of
// X-Forwarded-For that is not itself a trusted proxy (read from the right,
// since only the entries added by trusted proxies can be believed).
func (h *Handler) clientIP(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !h.trusted.contains(addr.Unmap()) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			entry := strings.TrimSpace(parts[j])
			a, err := netip.ParseAddr(entry)
			if err != nil {
				// Some balancers append "ip:port".
				ap, perr := netip.ParseAddrPort(entry)
				if perr != nil {
					return client // a garbled entry: believe nothing left of it
				}
				a = ap.Addr()
			}
			client = a.Unmap().String()
			if !h.trusted.contains(a.Unmap()) {
				return client
			}
		}
	}
	return client
}
