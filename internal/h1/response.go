package h1

import (
	"bufio"
	"bytes"
	"errors"
	"golang.org/x/net/http/httpguts"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// response is the http.ResponseWriter of one request. It also offers
// Flush, FlushError, Hijack and the connection's deadlines, which
// http.ResponseController finds.
type response struct {
	c   *conn
	req *http.Request
	hdr http.Header
	// head, when trailers were announced by WriteHeader, is the header as
	// it was then: what the head carries.
	head http.Header

	status      int
	wroteHeader bool  // the final status is set
	headSent    bool  // the head is in the connection's writer
	finished    bool  // the handler returned
	broken      bool  // the handler panicked: close without a proper end
	cl          int64 // the body length announced; -1: none
	written     int64 // body bytes accepted
	chunked     bool
	closeAfter  bool
	headReq     bool // a HEAD request: no body is sent
	noBody      bool // the status has no body (1xx, 204, 304) or HEAD
	http10      bool // the client speaks HTTP/1.0
	keepAlive10 bool // ... and asked to keep the connection
	trailers    bool // the handler announced trailers
	// over: the handler has returned, under c.dmu. A goroutine the handler
	// left behind (net/http's Transport reading a body) may still call
	// the deadline methods; from then on they no longer reach the
	// connection, which may be serving the next request, or parked
	// with its wrapper's connection being swapped (see parkDormant).
	over bool
}

func (c *conn) newResponse(req *http.Request, h *head) *response {
	w := new(response)
	c.initResponse(w, req, h)
	return w
}

// initResponse makes w the response writer of req, the request in flight.
func (c *conn) initResponse(w *response, req *http.Request, h *head) {
	*w = response{
		c:           c,
		req:         req,
		cl:          -1,
		headReq:     req.Method == http.MethodHead,
		http10:      h.minor == 0,
		keepAlive10: h.keepAlive,
		closeAfter:  h.closeConn || h.minor == 0 && !h.keepAlive,
	}
	c.resp = w
	c.pend = c.pend[:0]
	c.wmu.Lock()
	c.headGone = false
	c.wmu.Unlock()
}

// Errors of a response writer used out of turn.
var (
	errAfterHandler = errors.New("h1: write after the handler returned")
	errHijacked     = http.ErrHijacked
)

// Header returns the response's header map, made on the first call
// unless AdoptHeader gave it one.
func (w *response) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	}
	return w.hdr
}

// HeaderAdopter is implemented by the server's response writers. A
// handler that has built the header it answers with in a map of its own
// can hand that map over instead of copying it field by field.
type HeaderAdopter interface {
	// AdoptHeader makes h the response's header map and reports whether
	// it did. The response then owns h: the handler must change it
	// only through Header, like any response header, and must not keep
	// another reference to it. It does nothing and reports false once
	// Header has been called (the handler may hold the map it
	// returned) or the header has been written.
	AdoptHeader(h http.Header) bool
}

// AdoptHeader implements HeaderAdopter.
func (w *response) AdoptHeader(h http.Header) bool {
	if w.hdr != nil || h == nil || w.wroteHeader || w.finished || w.c.hijacked {
		return false
	}
	w.hdr = h
	return true
}

func (w *response) WriteHeader(code int) {
	if w.finished || w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.status, w.wroteHeader = code, true
	if v := w.hdr["Content-Length"]; len(v) > 0 {
		if n, ok := parseContentLength(strings.TrimSpace(v[0])); ok {
			w.cl = n
		}
	}
	if code == http.StatusNoContent || code == http.StatusNotModified || code < 200 || w.headReq {
		w.noBody = true
	}
	w.checkTrailers()
	if len(w.hdr["Trailer"]) > 0 {
		// The head is what the header held now, as with net/http: a
		// trailer set later must not be sent in the head as well.
		w.head = w.hdr.Clone()
	}
}

// checkTrailers notes whether the handler has trailers: announced in a
// Trailer field, or set with http.TrailerPrefix. They need chunked coding,
// which HTTP/1.0 lacks.
func (w *response) checkTrailers() {
	if w.trailers || w.http10 || w.noBody {
		return
	}
	if len(w.hdr["Trailer"]) > 0 {
		w.trailers = true
		return
	}
	for k := range w.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
			return
		}
	}
}

// writeInformational sends a 1xx answer (103 Early Hints and the like)
// with the headers set so far. 100 is the server's to send.
func (w *response) writeInformational(code int) {
	if code == http.StatusContinue || w.http10 {
		return
	}
	w.c.wmu.Lock() // not while a 100 Continue is being written
	defer w.c.wmu.Unlock()
	bw := w.c.writer()
	writeStatusLine(bw, code)
	writeFields(bw, w.hdr) // no framing fields: a 1xx has no body
	bw.WriteString("\r\n")
	bw.Flush()
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, errHijacked
	}
	if w.finished {
		return 0, errAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.headReq {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	if !w.headSent {
		if w.cl < 0 && len(w.c.pend)+len(p) <= pendSize {
			// The framing can wait: the handler may end within it.
			w.c.pend = append(w.c.pend, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		if err := w.sendHead(false); err != nil {
			return 0, err
		}
	}
	w.written += int64(len(p))
	return w.writeBody(p)
}

func (w *response) WriteString(s string) (int, error) {
	// Rare on this path; the conversion is the simplest correct thing.
	return w.Write([]byte(s))
}

// writeBody frames p (a chunk, or plain) into the connection's writer.
func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if !w.chunked {
		return bw.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
	bw.WriteString("\r\n")
	n, err := bw.Write(p)
	if err != nil {
		return n, err
	}
	_, err = bw.WriteString("\r\n")
	return n, err
}

// sendHead chooses the framing and writes the head, then the body held
// back. final: the handler has returned, so the body held back is all of
// it.
func (w *response) sendHead(final bool) error {
	w.headSent = true
	w.c.wmu.Lock()
	w.c.headGone = true
	w.c.wmu.Unlock()
	w.checkTrailers()
	bw := w.c.writer()
	switch {
	case w.noBody:
	case w.trailers:
		w.chunked, w.cl = true, -1
	case w.cl >= 0:
	case final:
		w.cl = int64(len(w.c.pend))
	case !w.http10:
		w.chunked = true
	default:
		// An HTTP/1.0 client: the body ends when the connection does.
		w.closeAfter = true
	}
	if w.c.srv.inShutdown.Load() || w.c.bodyWillClose() {
		w.closeAfter = true
	}
	if v, ok := w.hdr["Connection"]; ok && hasToken(v, "close") {
		w.closeAfter = true
	}
	writeStatusLine(bw, w.status)
	if w.head != nil {
		writeFields(bw, w.head)
	} else {
		writeFields(bw, w.hdr)
	}
	if _, ok := w.hdr["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	switch {
	case w.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case w.cl >= 0 && (w.status != http.StatusNoContent && w.status >= 200):
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.cl, 10))
		bw.WriteString("\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	} else if w.http10 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	_, err := bw.WriteString("\r\n")
	if len(w.c.pend) > 0 {
		p := w.c.pend
		w.c.pend = w.c.pend[:0]
		_, err = w.writeBody(p)
	}
	return err
}

// Flush sends what was written so far to the client.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return errHijacked
	}
	if w.finished {
		return errAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		if err := w.sendHead(false); err != nil {
			return err
		}
	}
	return w.c.bw.Flush()
}

// finish ends the response once the handler returned, and reports whether
// the connection may serve another request.
func (w *response) finish() bool {
	c := w.c
	c.dmu.Lock()
	w.over = true // before the client can see the end of the response
	c.dmu.Unlock()
	defer func() { c.resp = nil }()
	if w.broken && !w.headSent {
		// A panic before anything was sent: say so, as net/http would
		// have closed without a word only after sending nothing either.
		w.hdr = http.Header{}
		w.cl, w.trailers, w.noBody = -1, false, false
		w.wroteHeader = false
		c.pend = c.pend[:0]
		w.written = 0
		w.closeAfter = true
		w.WriteHeader(http.StatusInternalServerError)
	} else if w.broken {
		w.finished = true
		return false
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		if err := w.sendHead(true); err != nil {
			w.finished = true
			return false
		}
	}
	w.finished = true
	bw := c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		w.checkTrailers() // set with http.TrailerPrefix after the head went
		if w.trailers {
			w.writeTrailers(bw)
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return false
	}
	if w.cl >= 0 && !w.noBody && w.written < w.cl {
		// Short of what the head announced: the client's framing is
		// broken, only closing ends it.
		return false
	}
	return !w.closeAfter
}

// writeTrailers writes the trailer fields: those the Trailer header
// announced, and those set with http.TrailerPrefix; never a field that
// frames, routes or authorises the message (Content-Length,
// Transfer-Encoding, Host and the others httpguts.ValidTrailerHeader
// refuses), which a recipient merging trailers could act on.
func (w *response) writeTrailers(bw *bufio.Writer) {
	for _, list := range w.hdr["Trailer"] {
		for list != "" {
			var k string
			k, list, _ = strings.Cut(list, ",")
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if !isToken(k) || !httpguts.ValidTrailerHeader(k) {
				continue
			}
			for _, v := range w.hdr[k] {
				writeField(bw, k, v)
			}
		}
	}
	for k, vs := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && isToken(name) && httpguts.ValidTrailerHeader(name) {
			for _, v := range vs {
				writeField(bw, name, v)
			}
		}
	}
}

// Hijack hands the connection to the handler (a protocol upgrade): the
// server forgets it, and the bytes it had read past the request come in
// the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, errHijacked
	}
	if w.finished {
		return nil, nil, errAfterHandler
	}
	if w.wroteHeader && !w.headSent {
		// The status set before the hijack goes first, as with net/http.
		if err := w.sendHead(false); err != nil {
			return nil, nil, err
		}
	}
	if c.bw != nil {
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	if b := c.reqBody; b != nil {
		// A body still being read (by net/http's Transport, for an
		// upgrade) must not read the hijacker's bytes.
		b.detach()
	}
	c.stopBG()
	c.hijacked = true
	// The connection is the hijacker's: Shutdown no longer waits for it
	// (nor for its handler), as with net/http.
	c.srv.trackConn(c, false)
	var left []byte
	if c.buf != nil {
		left = append(left, c.buf[c.r:c.w]...)
	}
	c.releaseBuf()
	// The reader holds those bytes buffered, then reads the connection,
	// as net/http's does.
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(left), c.nc), max(len(left), bufSize))
	if len(left) > 0 {
		br.Peek(len(left))
	}
	bw := c.writer()
	c.bw = nil
	bw.Reset(c.nc)
	return c.nc, bufio.NewReadWriter(br, bw), nil
}

// SetReadDeadline bounds reads of the connection (the request body). Once
// the handler has returned it fails and does nothing (see over).
func (w *response) SetReadDeadline(t time.Time) error { return w.setDeadline(t, false) }

// SetWriteDeadline bounds writes to the connection. Once the handler has
// returned it fails and does nothing (see over).
func (w *response) SetWriteDeadline(t time.Time) error { return w.setDeadline(t, true) }

func (w *response) setDeadline(t time.Time, write bool) error {
	c := w.c
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if w.over {
		return errAfterHandler
	}
	if !write {
		return c.nc.SetReadDeadline(t)
	}
	c.writeDeadline = true // cleared once the response is done
	return c.nc.SetWriteDeadline(t)
}

func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	bw.WriteByte(' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
	bw.WriteString("\r\n")
}

// writeFields writes the handler's header fields. The fields that frame
// the message (Content-Length, Transfer-Encoding, Connection, Keep-Alive)
// are the server's to write; trailer fields wait for the end.
func writeFields(bw *bufio.Writer, h http.Header) {
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || !isToken(k) {
			continue
		}
		if k == "Trailer" {
			writeTrailerField(bw, vs)
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
}

// writeTrailerField announces the trailers that may be sent (see
// writeTrailers), and no other.
func writeTrailerField(bw *bufio.Writer, vs []string) {
	var names []string
	for _, list := range vs {
		for list != "" {
			var k string
			k, list, _ = strings.Cut(list, ",")
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if isToken(k) && httpguts.ValidTrailerHeader(k) {
				names = append(names, k)
			}
		}
	}
	if len(names) > 0 {
		writeField(bw, "Trailer", strings.Join(names, ", "))
	}
}

// writeField writes one field; a CR, LF or NUL in its value becomes a space,
// so no value can end the head early or add a field (response splitting).
func writeField(bw *bufio.Writer, k, v string) {
	if !strings.ContainsAny(v, "\r\n\x00") {
		WriteFieldLine(bw, k, v)
		return
	}
	b := []byte(v)
	for i, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			b[i] = ' '
		}
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.Write(b)
	bw.WriteString("\r\n")
}

// WriteFieldLine writes the header line "k: v" and its CRLF to bw, in one
// write when the buffer has room for all of it. It writes k and v as they
// are: the caller has made sure that neither can end the line early (no
// CR, LF or NUL).
func WriteFieldLine(bw *bufio.Writer, k, v string) {
	if len(k)+len(v)+4 > bw.Available() {
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
		return
	}
	b := bw.AvailableBuffer()
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = append(b, v...)
	b = append(b, '\r', '\n')
	bw.Write(b)
}

// hasToken reports whether a comma-separated list holds tok.
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if asciiEqualFold(trimOWS(t), tok) {
				return true
			}
		}
	}
	return false
}

// The Date field, formatted once a second.
type dateCache struct {
	sec int64
	s   string
}

var date atomic.Pointer[dateCache]

func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := date.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateCache{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.s
}
