package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"

	"github.com/holdfast/holdfast/cause"
)

// Request fields that reach an upstream.
//
// holdfast writes every request to an upstream as an HTTP/1.1 request line
// and header section, whatever protocol the client spoke. A field that
// HTTP/1.1 cannot carry as it is would change the request on the way: over
// HTTP/2, a :method of "GET /admin HTTP/1.1" would become part of the
// request line, so that the upstream served /admin while holdfast routed
// and logged another path. Such requests are refused at the door
// (admitRequest), before routing, and the upstream client refuses to write
// any request whose line or header holds a byte that cannot be there
// (checkOutgoing), as a second line of defence.

// admitRequest checks the request's method, target, Host and number of
// header fields, and answers 400 or 431 itself when one is unfit to
// forward. It returns false when the request must not go on.
func (h *Handler) admitRequest(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	status, detail := http.StatusBadRequest, ""
	switch {
	case !validMethod(r.Method):
		detail = "request method is not an HTTP token: " + strconv.Quote(r.Method)
	case !validTarget(r.RequestURI):
		detail = "request target holds a space, a control character or nothing: " + strconv.Quote(r.RequestURI)
	case !httpguts.ValidHostHeader(r.Host):
		detail = "Host is not a valid host: " + strconv.Quote(r.Host)
	case h.maxHeaderCount > 0 && headerCount(r.Header) > h.maxHeaderCount:
		status = http.StatusRequestHeaderFieldsTooLarge
		detail = "request has more than client.max_header_count (" + strconv.Itoa(h.maxHeaderCount) + ") header fields"
	default:
		return true
	}
	x.cause, x.status, x.detail = cause.HTTPRequestError, status, detail
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	h.answerError(w, r, x, 0, nil)
	return false
}

// headerCount counts header fields as they were sent: each value of a
// repeated field is one line.
func headerCount(hdr http.Header) int {
	n := 0
	for _, v := range hdr {
		n += len(v)
	}
	return n
}

// validMethod reports whether m is an RFC 9110 token, the same grammar as
// a header field name.
func validMethod(m string) bool { return httpguts.ValidHeaderFieldName(m) }

// validTarget reports whether t can stand as the request target of an
// HTTP/1.1 request line: not empty, and no space, control character or
// DEL, which would end the target early or break the line.
func validTarget(t string) bool {
	return t != "" && lineSafe(t)
}

// lineSafe reports whether s holds no space, control character or DEL.
func lineSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// errUnwritable is the error of a request holdfast refuses to write.
var errUnwritable = errors.New("request cannot be written as HTTP/1.1")

// checkOutgoing returns an http_request_error if req holds a byte that
// cannot be in an HTTP/1.1 request line or header section: a space or
// control character in the method or target, CR, LF or NUL in a header
// name, value or trailer, or a name that is not a token. Nothing has been
// written when it fails.
func checkOutgoing(req *http.Request) error {
	bad := func(what string) error {
		return &cause.Error{Cause: cause.HTTPRequestError, Err: fmt.Errorf("%w: %s", errUnwritable, what)}
	}
	if !validMethod(req.Method) {
		return bad("method " + strconv.Quote(req.Method))
	}
	// The parts the request line is made of, as url.URL.RequestURI joins
	// them, checked without building it (a string per request): the path
	// is written escaped, the query and an opaque target as they are.
	u := req.URL
	if !lineSafe(u.Opaque) || !lineSafe(u.EscapedPath()) || !lineSafe(u.RawQuery) {
		return bad("target " + strconv.Quote(u.RequestURI()))
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return bad("Host " + strconv.Quote(req.Host))
	}
	for _, hdr := range [2]http.Header{req.Header, req.Trailer} {
		for k, vv := range hdr {
			if !httpguts.ValidHeaderFieldName(k) {
				return bad("header name " + strconv.Quote(k))
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					return bad("value of header " + k)
				}
			}
		}
	}
	return nil
}
