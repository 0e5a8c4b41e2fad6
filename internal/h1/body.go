package h1

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Body errors. Any of them leaves the connection's framing unknown, so the
// connection closes after the response.
var (
	errChunkSize    = errors.New("invalid chunk size line")
	errChunkEnd     = errors.New("chunk data not followed by CRLF")
	errTrailer      = errors.New("invalid trailer section")
	errTrailerLarge = errors.New("trailer section over the limit")
	errBodyClosed   = errors.New("h1: read on a closed request body")
	errChunkExcess  = errors.New("chunked body carries too much framing for its data")
)

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// body is a request body framed by Content-Length or chunked coding, read
// from the connection's buffer and socket. It never reads past the body's
// end, so the next request on the connection starts where it should.
type body struct {
	// mu is held through every read. A handler may hand the body to a
	// goroutine that outlives it (net/http's Transport writes a request
	// body on a goroutine of its own); once the handler returns, or
	// hijacks the connection, the server takes the body back (detach), and
	// reads by anyone else fail from then on.
	mu       sync.Mutex
	detached bool

	c        *conn
	req      *http.Request
	chunked  bool
	left     int64       // bytes left: of the body (Content-Length) or of the chunk
	started  bool        // chunked: the first chunk-size line was read
	done     bool        // the end was read (EOF returned)
	err      error       // a framing or I/O error, returned from then on
	closed   atomic.Bool // the handler closed it (without waiting for a read in flight)
	expect   bool        // 100 Continue is owed before the first read
	trailers int         // bytes of trailer section read so far
	excess   int64       // chunked: framing bytes beyond an allowance per chunk
}

// excessMax bounds the chunked framing (size lines, extensions, CRLFs)
// a body may carry beyond 16 bytes plus twice its data per chunk, so that a
// client cannot make the server read framing without end: tiny chunks with
// long extensions are refused, as net/http refuses them.
const excessMax = 16 << 10

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() || b.detached {
		return 0, errBodyClosed
	}
	return b.read(p)
}

// read is Read without the checks of the handler's side; b.mu is held.
func (b *body) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		if err := b.c.writeContinue(); err != nil {
			b.err = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readFixed(p)
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if b.left == 0 {
		b.finish()
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.readBody(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.finish()
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	for b.left == 0 {
		if b.started {
			// The CRLF after a chunk's data.
			line, err := b.c.readLine(maxChunkLine)
			if err != nil {
				return 0, err
			}
			if line != "" {
				return 0, errChunkEnd
			}
		}
		b.started = true
		line, err := b.c.readLine(maxChunkLine)
		if err != nil {
			if err == errLineTooLong {
				return 0, errChunkSize
			}
			return 0, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return 0, errChunkSize
		}
		b.excess += int64(len(line)) + 2 - 16 - 2*min(size, 1<<20)
		if b.excess < 0 {
			b.excess = 0
		}
		if b.excess > excessMax {
			return 0, errChunkExcess
		}
		if size == 0 {
			if err := b.readTrailers(); err != nil {
				return 0, err
			}
			b.finish()
			return 0, io.EOF
		}
		b.left = size
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.readBody(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// parseChunkSize reads chunk-size [ chunk-ext ]: hex digits (at most 15,
// so the size fits an int64), then extensions, which are ignored but must
// hold no control character.
func parseChunkSize(line string) (int64, bool) {
	i := 0
	var n int64
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	if rest == "" {
		return n, true
	}
	// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
	if r := trimOWS(rest); r == "" || r[0] != ';' {
		return 0, false
	}
	return n, fieldValueOK(rest)
}

// readTrailers reads the trailer section after the last chunk into
// Request.Trailer, with the strictness of the head.
func (b *body) readTrailers() error {
	for {
		line, err := b.c.readLine(maxChunkLine)
		if err != nil {
			if err == errLineTooLong {
				return errTrailerLarge
			}
			return err
		}
		if line == "" {
			return nil
		}
		b.trailers += len(line) + 2
		if b.trailers > b.c.srv.maxHead() {
			return errTrailerLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errTrailer
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return errTrailer
		}
		value = trimOWS(value)
		if !fieldValueOK(value) {
			return errTrailer
		}
		if b.req.Trailer == nil {
			b.req.Trailer = make(http.Header)
		}
		b.req.Trailer.Add(canonicalKey(name), value)
	}
}

// finish marks the end of the body read: from now on a read of the
// connection is a read of the next request (or of the client going away).
func (b *body) finish() {
	if !b.done {
		b.done = true
		b.c.bodyDone()
	}
}

func (b *body) Close() error {
	b.closed.Store(true)
	return nil
}

// detach takes the body back from the handler's side, for good: a read in
// flight on another goroutine is cut short by a past read deadline (then
// the deadline is cleared), and every later Read fails. The server alone
// reads what is left (drain), or closes the connection.
func (b *body) detach() {
	if !b.mu.TryLock() {
		if !b.done {
			b.c.nc.SetReadDeadline(aLongTimeAgo)
		}
		b.mu.Lock()
		b.c.nc.SetReadDeadline(time.Time{})
	}
	b.detached = true
	b.mu.Unlock()
}

// drain reads and drops what is left of a detached body, up to max bytes,
// and reports whether it ended within them.
func (b *body) drain(max int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var scratch [4096]byte
	var n int64
	for n <= max {
		m, err := b.read(scratch[:])
		n += int64(m)
		if err == io.EOF {
			return n <= max
		}
		if err != nil {
			return false
		}
	}
	return false
}

// complete reports whether the body was read to its end without error.
func (b *body) complete() bool { return b.done && b.err == nil }
