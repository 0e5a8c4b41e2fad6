package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/h1"
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// respond passes an upstream response to the client: headers without
// hop-by-hop fields, the body streamed (flushed at once for event streams
// and bodies of unknown length), trailers after it, and upgraded connections
// tunnelled. It returns true when the stream must be aborted because the
// upstream failed after the header was sent.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, x *exchange, p *pool, resp *http.Response, actx context.Context, cancel context.CancelCauseFunc, up string) (abort bool) {
	x.status = resp.StatusCode
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return h.tunnel(w, r, x, resp, up)
	}
	defer resp.Body.Close()

	announced := announceTrailers(resp)
	removeHopHeaders(resp.Header)
	var dst http.Header
	if a, ok := w.(h1.HeaderAdopter); ok && !x.cache.store && a.AdoptHeader(resp.Header) {
		// The upstream's header becomes the client's, as it is, without
		// a copy: it was made for this response alone (by holdfast's
		// own client or net/http's Transport), and only a response
		// being stored in the cache is read again after this. Whatever
		// reads resp.Header after this point sees the fields added
		// here (Via, X-Request-Id, an empty Content-Type).
		dst = resp.Header
		finishResponseHeader(dst, dst)
	} else {
		dst = w.Header()
		copyResponseHeader(dst, resp.Header)
	}
	if len(announced) > 0 {
		dst["Trailer"] = announced
	}
	if _, ok := dst["X-Request-Id"]; !ok {
		// A slice of its own: the outgoing header's storage serves the
		// next exchange, and the response's head may be written after
		// this one is over.
		if v := x.reqIDVal; v != nil {
			x.reqIDVal = nil // one owner
			dst["X-Request-Id"] = v
		} else {
			dst["X-Request-Id"] = []string{x.reqID}
		}
	}
	if p.retryOn.status(resp.StatusCode) {
		// Retries ran out on an upstream error status: say so (RFC 9209),
		// leaving the upstream's own response otherwise untouched.
		appendProxyStatus(dst, "holdfast; received-status="+strconv.Itoa(resp.StatusCode))
	}
	w.WriteHeader(resp.StatusCode)

	flush := resp.ContentLength == -1 || isEventStream(field(resp.Header, "Content-Type"))
	rc := http.NewResponseController(w)
	if flush {
		x.send.start()
		_ = rc.Flush()
		x.send.end()
	}

	var body io.Reader = resp.Body
	var tr *timeoutReader
	if _, own := resp.Body.(*h1Body); !own && p.readTO > 0 {
		// net/http's Transport has no read timeout between body reads;
		// holdfast's own client sets it as a socket deadline.
		tr = &timeoutReader{r: resp.Body, d: p.readTO, cancel: cancel}
		defer tr.stop()
		body = tr
	}
	var sink *storeSink
	if x.cache.store {
		sink = &storeSink{max: x.route.cache.maxObject, budget: x.route.cache.budget}
		defer sink.release()
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			x.send.start()
			wn, werr := w.Write(buf[:n])
			x.send.end()
			x.bytesOut += int64(wn)
			if sink != nil {
				sink.write(buf[:n])
			}
			if werr != nil {
				// Returning closes the response body before its end, and
				// with it the upstream connection.
				return h.sendFailed(x)
			}
			// Flush event streams at once, and anything else whenever the
			// upstream had no more to give right now (a short read): a
			// client then gets what exists while the upstream is slow.
			if flush || (n < len(buf) && rerr == nil) {
				x.send.start()
				err := rc.Flush()
				x.send.end()
				if err != nil {
					return h.sendFailed(x)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if x.reqBody.stream.readErr() == errBodyTimeout {
				// The response came while the body was still streaming
				// (net/http's Transport sends both at once) and the body
				// stalled: the upstream request was aborted with it.
				x.cause, x.status = cause.ClientTimeout, http.StatusRequestTimeout
				x.detail = cause.ClientTimeout.Explain("client.body_timeout " + h.bodyTO.String())
				return true
			}
			if x.send.expired() {
				// An HTTP/2 write cut as it completed: the stream is reset,
				// and the upstream with it.
				return h.sendFailed(x)
			}
			if r.Context().Err() != nil {
				x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
				return false
			}
			c := cause.HTTPResponseIncomplete
			if errors.Is(context.Cause(actx), errReadTimeout) {
				c = cause.ConnectionReadTimeout
			} else if k := cause.Classify(rerr, cause.PhaseRead); k == cause.ConnectionReadTimeout {
				c = k
			}
			x.cause = c
			x.detail = c.Explain(x.attempts[len(x.attempts)-1].Server) + ": " + rerr.Error()
			if n := len(x.attempts); n > 0 {
				x.attempts[n-1].Cause = c
			}
			return true
		}
	}
	if sink != nil && !sink.over {
		rc := x.route.cache
		if rc.c.Store(r, x.cache.key, resp, sink.buf.Bytes(), x.cache.reqTime, h.now()) {
			rc.c.Count("stored")
		}
	}
	for k, v := range resp.Trailer {
		if len(v) == 0 {
			continue
		}
		if contains(announced, k) {
			dst[k] = v
		} else {
			dst[http.TrailerPrefix+k] = v
		}
	}
	if x.cause == cause.None && p.retryOn.status(resp.StatusCode) {
		x.cause = cause.UpstreamStatus
	}
	return false
}

// sendFailed notes why a write to the client failed, and reports whether
// the stream must be cut: client.send_timeout ran out (the connection is
// held by a client that does not read), or else the client went away.
func (h *Handler) sendFailed(x *exchange) (abort bool) {
	if x.send.expired() {
		x.cause, x.status = cause.ClientTimeout, http.StatusRequestTimeout
		x.detail = cause.ClientTimeout.Explain("client.send_timeout " + h.sendTO.String())
		return true
	}
	x.cause, x.status = cause.ClientClosed, cause.StatusClientClosed
	return false
}

// finishSend bounds by client.send_timeout what net/http still writes of
// the response once the handler has returned (what its buffers hold, the
// end of a chunked body, a small error page in full), which has no deadline
// of its own. On HTTP/1 the deadline is left set for it, and net/http lifts
// it afterwards, so that a kept-alive connection's next response starts
// clear. On HTTP/2 the watchdog ends with the handler: the response is
// flushed under it here, and what net/http sends after, the end of the
// stream, is not held back by flow control.
func (h *Handler) finishSend(w http.ResponseWriter, x *exchange) {
	if x.send.d <= 0 || x.status == http.StatusSwitchingProtocols || x.cause == cause.ClientClosed {
		return
	}
	x.send.start()
	if x.send.dog != nil {
		_ = http.NewResponseController(w).Flush()
		x.send.end()
	}
}

func announceTrailers(resp *http.Response) []string {
	if len(resp.Trailer) == 0 {
		return nil
	}
	out := make([]string, 0, len(resp.Trailer))
	for k := range resp.Trailer {
		out = append(out, k)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isEventStream(ct string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// timeoutReader cancels the attempt when one read waits longer than d: the
// read timeout between body reads, nginx's proxy_read_timeout.
type timeoutReader struct {
	r      io.Reader
	d      time.Duration
	cancel context.CancelCauseFunc
	t      *time.Timer
}

func (t *timeoutReader) Read(p []byte) (int, error) {
	if t.t == nil {
		t.t = time.AfterFunc(t.d, func() { t.cancel(errReadTimeout) })
	} else {
		t.t.Reset(t.d)
	}
	n, err := t.r.Read(p)
	t.t.Stop()
	return n, err
}

func (t *timeoutReader) stop() {
	if t.t != nil {
		t.t.Stop()
	}
}

// tunnel completes a protocol upgrade (WebSocket and the like): it sends the
// upstream's 101 to the client over the hijacked connection and copies
// bytes both ways until either side closes. No total timeout applies.
func (h *Handler) tunnel(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response, up string) bool {
	backConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || !strings.EqualFold(upgradeType(resp.Header), up) {
		resp.Body.Close()
		x.cause, x.status = cause.HTTPUpgradeFailed, http.StatusBadGateway
		x.detail = "upstream switched protocols without a matching Upgrade"
		h.answerError(w, r, x, 0, x.route.pages)
		return false
	}
	defer backConn.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		x.cause, x.status = cause.HTTPUpgradeFailed, http.StatusBadGateway
		x.detail = "cannot take over the client connection: " + err.Error()
		h.answerError(w, r, x, 0, x.route.pages)
		return false
	}
	defer conn.Close()
	hdr := resp.Header.Clone()
	removeHopHeaders(hdr)
	hdr.Set("Connection", "Upgrade")
	hdr.Set("Upgrade", up)
	res := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: hdr}
	if err := res.Write(brw); err != nil {
		return false
	}
	if err := brw.Flush(); err != nil {
		return false
	}
	done := make(chan struct{}, 2)
	cp := func(dst io.Writer, src io.Reader, n *int64) {
		c, _ := io.Copy(dst, src)
		*n += c
		done <- struct{}{}
	}
	var in, out int64
	// Bytes the server already buffered from the client belong upstream.
	var src io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(append([]byte(nil), buffered...)), conn)
	}
	go cp(backConn, src, &in)
	go cp(conn, backConn, &out)
	<-done
	// One side is done: close both so the other copy ends too.
	conn.Close()
	backConn.Close()
	<-done
	x.bytesIn += in
	x.bytesOut += out
	return false
}
