package proxy

import (
	"io"
	"net/http"
	"time"
)

// optionsBodyMax bounds what is read of a body sent with OPTIONS *, as
// net/http's own answer does; past it, net/http closes the connection.
const optionsBodyMax = 4 << 10

// optionsAllow lists the methods holdfast forwards.
const optionsAllow = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

// ServeOptionsStar answers "OPTIONS *", a question about the server itself
// rather than any resource (RFC 9110 section 9.3.7), which no route matches:
// 200 with an empty body and the methods holdfast forwards in Allow. A body,
// which OPTIONS does not define, is read up to a small bound. The request is
// logged like any other.
func (h *Handler) ServeOptionsStar(w http.ResponseWriter, r *http.Request) {
	x := exchangePool.Get().(*exchange)
	x.reset()
	x.start = h.now()
	x.setRequestID(r.Header)
	defer exchangePool.Put(x)
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// Left alone, net/http would discard up to 256 KiB of it to keep
		// the connection; past this smaller bound MaxBytesReader has it
		// close the connection instead, as its own OPTIONS * answer did.
		// A body that does not come is waited for no longer than
		// client.body_timeout.
		if h.bodyTO > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.bodyTO))
		}
		n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, optionsBodyMax))
		x.bytesIn = n
		if err != nil {
			w.Header().Set("Connection", "close")
		}
	}
	hdr := w.Header()
	hdr.Set("Allow", optionsAllow)
	hdr.Set("Content-Length", "0")
	hdr.Set("X-Request-Id", x.reqID)
	w.WriteHeader(http.StatusOK)
	x.status = http.StatusOK
	h.logRequest(r, x)
}
