package proxy

import (
	"bytes"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Keeping pooled upstream connections in step.
//
// A pooled HTTP/1.1 connection is safe to reuse only while both ends agree
// on where each response ends. An upstream that writes anything beyond a
// response (a second, unsolicited response; a body longer than its
// Content-Length; bytes after a HEAD, 204 or 304 response) leaves those
// bytes waiting on the connection, and the next request written there
// would be answered with them: one client would receive a response meant
// for another. holdfast therefore reuses a connection only when it is
// provably in step:
//
//   - when a response ends, nothing may be left in the read buffer (or, for
//     TLS, in the TLS layer's buffers);
//   - when a connection is taken from the pool, a non-blocking peek at the
//     socket must find nothing waiting, however short the idle time.
//
// Either finding closes the connection and charges the server with an
// http_protocol_error in passive health. Bytes that arrive only after the
// next request was written cannot be told from its response (no HTTP/1.1
// client can), so a server caught once has every connection used for one
// request only, for upstream.DesyncQuarantine.

// peekState is what a look at an idle pooled connection found.
type peekState uint8

const (
	peekOpen   peekState = iota // nothing waiting: in step
	peekClosed                  // the peer closed or reset it
	peekData                    // bytes waiting that no request asked for
)

// idleNotice reports whether bytes found on an idle connection are a
// server's "408 Request Timeout" sent as it closes an idle keep-alive
// connection: the normal end of a connection, not a stream out of step.
func idleNotice(b []byte) bool {
	return len(b) >= 12 && (bytes.HasPrefix(b, []byte("HTTP/1.1 408")) || bytes.HasPrefix(b, []byte("HTTP/1.0 408")))
}

// noteDesync reports to passive health, once each, the times server s was
// caught sending bytes outside any response (found by this request or by
// another one on s), and logs them.
func (h *Handler) noteDesync(p *pool, s *upstream.Server, x *exchange) {
	n := s.State.TakeDesyncs()
	if n == 0 {
		return
	}
	for i := int64(0); i < n; i++ {
		h.health(p, s, upstream.SoftFailure, cause.HTTPProtocolError.String(), "bytes outside any response")
	}
	if p.h1[s.Index()].desyncLogDue(h.now()) {
		h.log.Warn("upstream sent bytes outside any response: connection closed, keep-alive to the server suspended",
			"pool", p.Name, "server", s.Name, "cause", cause.HTTPProtocolError.String(),
			"total", s.State.DesyncCount(), "reuse_suspended_for", upstream.DesyncQuarantine.String(), "request_id", x.reqID)
	}
}

// desyncLogEvery spaces the log lines about one server's desynchronisations:
// a server that does it on every response would otherwise write one per
// request. Passive health still counts every one.
const desyncLogEvery = 10 * time.Second

// desyncLogDue reports whether a line about this server's desynchronisation
// may be logged at now, and if so holds off the next for desyncLogEvery.
func (p *h1Pool) desyncLogDue(now time.Time) bool {
	next := p.desyncLogAt.Load()
	if now.UnixNano() < next {
		return false
	}
	return p.desyncLogAt.CompareAndSwap(next, now.Add(desyncLogEvery).UnixNano())
}
