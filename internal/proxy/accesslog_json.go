package proxy

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/cause"
)

// AccessLog is where the access log goes: one JSON object per request, one
// line per request. Each line is written with a single Write as soon as the
// request ends, unbuffered, so that a crash loses no line and a reader sees
// a request's line once it is answered.
//
// The line is encoded by hand rather than through log/slog: slog's
// attributes and encoding/json's reflection over the ledger cost several
// times more than the rest of the line. The output is byte for byte what
// slog's JSONHandler wrote before (same keys, order, escaping and number
// formatting), so tools that parse the log see no difference.
//
// An AccessLog is safe for concurrent use; lines never interleave.
type AccessLog struct {
	mu sync.Mutex // one Write at a time, as slog's handler did
	w  io.Writer

	// With a buffer (NewBufferedAccessLog), lines wait in buf until size
	// bytes are waiting or every seconds after the first of them.
	buf    []byte
	size   int
	every  time.Duration
	timer  *time.Timer // armed while lines wait
	closed bool
}

// NewAccessLog returns an access log writing to w, one Write per line. w
// need not be safe for concurrent use.
func NewAccessLog(w io.Writer) *AccessLog { return &AccessLog{w: w} }

// NewBufferedAccessLog returns an access log that collects lines and writes
// them to w together, once size bytes wait or every after the first of
// them: one write for many requests. Close (or Flush) writes what waits.
// size 0 is NewAccessLog.
func NewBufferedAccessLog(w io.Writer, size int, every time.Duration) *AccessLog {
	l := &AccessLog{w: w, size: size, every: every}
	if size > 0 {
		l.buf = make([]byte, 0, size)
	}
	return l
}

// Flush writes the lines waiting in the buffer.
func (l *AccessLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

// Close writes what waits; later lines are written one by one, so that a
// request still in flight on an old configuration loses none.
func (l *AccessLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
}

func (l *AccessLog) flushLocked() {
	if len(l.buf) > 0 {
		_, _ = l.w.Write(l.buf)
		l.buf = l.buf[:0]
	}
}

// maxPooledLine bounds the buffers kept for reuse: a line with a huge URL
// or header should not pin its buffer for the life of the process.
const maxPooledLine = 64 << 10

var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// write encodes the request's line and writes it.
func (l *AccessLog) write(r *http.Request, x *exchange, routeName, poolName string, d time.Duration) {
	bp := linePool.Get().(*[]byte)
	b := appendAccessLine((*bp)[:0], time.Now(), r, x, routeName, poolName, d)
	l.mu.Lock()
	switch {
	case l.size == 0 || l.closed:
		_, _ = l.w.Write(b) // like slog's Logger, nowhere to report a failed log write
	default:
		if len(l.buf)+len(b) > l.size {
			l.flushLocked()
		}
		if len(b) > l.size {
			_, _ = l.w.Write(b)
			break
		}
		l.buf = append(l.buf, b...)
		if l.timer == nil {
			l.timer = time.AfterFunc(l.every, l.Flush)
		} else if len(l.buf) == len(b) {
			// The first line waiting: its wait starts now.
			l.timer.Reset(l.every)
		}
	}
	l.mu.Unlock()
	if cap(b) <= maxPooledLine {
		*bp = b
		linePool.Put(bp)
	}
}

// appendAccessLine appends the access-log line of a request, with its
// newline, as slog's JSONHandler wrote it: time, level, msg, then the
// request's fields in a fixed order, the optional ones only when set.
func appendAccessLine(b []byte, t time.Time, r *http.Request, x *exchange, routeName, poolName string, d time.Duration) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendString(b, x.reqID, false)
	b = append(b, `,"client":`...)
	b = appendString(b, r.RemoteAddr, false)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method, false)
	b = append(b, `,"host":`...)
	b = appendString(b, r.Host, false)
	b = append(b, `,"path":`...)
	b = appendString(b, r.URL.Path, false)
	b = append(b, `,"query":`...)
	b = appendString(b, r.URL.RawQuery, false)
	b = append(b, `,"proto":`...)
	b = appendString(b, r.Proto, false)
	b = append(b, `,"tls":`...)
	b = appendString(b, tlsVersion(r), false)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, r.Header.Get("User-Agent"), false)
	b = append(b, `,"referer":`...)
	b = appendString(b, r.Header.Get("Referer"), false)
	b = append(b, `,"route":`...)
	b = appendString(b, routeName, false)
	b = append(b, `,"upstream":`...)
	b = appendString(b, poolName, false)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(x.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendFloat(b, ms(d))
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, x.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, x.bytesOut, 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(len(x.attempts)), 10)
	if x.cause != cause.None {
		b = append(b, `,"cause":`...)
		b = appendString(b, x.cause.String(), false)
		if x.detail != "" {
			b = append(b, `,"detail":`...)
			b = appendString(b, x.detail, false)
		}
	}
	if x.cache.result != "" {
		b = append(b, `,"cache":`...)
		b = appendString(b, x.cache.result, false)
	}
	if x.retrySkipped != "" && x.cause != cause.None {
		b = append(b, `,"retry_skipped":`...)
		b = appendString(b, x.retrySkipped, false)
	}
	if len(x.attempts) > 0 {
		b = append(b, `,"ledger":`...)
		b = appendLedger(b, x.attempts)
	}
	return append(b, "}\n"...)
}

// appendLedger appends the attempts as encoding/json marshals a
// []attemptRecord: the fields in declaration order under their json tags,
// the omitempty ones left out when zero, Phase and Cause through their
// MarshalText. A field added to attemptRecord must be added here too
// (TestAccessLogLedgerFields fails until it is).
func appendLedger(b []byte, attempts []attemptRecord) []byte {
	b = append(b, '[')
	for i := range attempts {
		a := &attempts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"server":`...)
		b = appendString(b, a.Server, true)
		b = append(b, `,"phase":`...)
		b = appendString(b, a.Phase.String(), true)
		b = append(b, `,"reused":`...)
		b = strconv.AppendBool(b, a.Reused)
		if a.IdleMS != 0 {
			b = append(b, `,"idle_ms":`...)
			b = appendFloat(b, a.IdleMS)
		}
		b = append(b, `,"written":`...)
		b = strconv.AppendBool(b, a.Written)
		if a.Cause != cause.None {
			b = append(b, `,"cause":`...)
			b = appendString(b, a.Cause.String(), true)
		}
		if a.Status != 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(a.Status), 10)
		}
		b = append(b, `,"duration_ms":`...)
		b = appendFloat(b, a.Duration)
		if a.WaitMS != 0 {
			b = append(b, `,"wait_ms":`...)
			b = appendFloat(b, a.WaitMS)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendFloat appends f as encoding/json does (slog's JSONHandler calls
// it for floats): like ES6's number to string, the shortest form that
// reads back the same, with an exponent only below 1e-6 or from 1e21 on,
// and no leading zero in a negative exponent. encoding/json refuses NaN
// and infinities, which durations never produce; they are written as
// null here so that the line stays JSON.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// plain holds true for the ASCII bytes that go into a JSON string as they
// are: all but the control characters, the quote and the backslash. Like
// slog and encoding/json without SetEscapeHTML, <, > and & are not escaped.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a quoted JSON string, escaped as slog and
// encoding/json escape it: control characters, quote and backslash
// escaped, each byte of invalid UTF-8 replaced by \ufffd, U+2028 and
// U+2029 escaped (they end a line in JavaScript).
//
// The two differ in one respect, and each part of the line must match
// the one that wrote it: encoding/json, which wrote the ledger, writes
// backspace and form feed as \b and \f (short); slog's own string
// encoder, which wrote every other field, as \u0008 and \u000c.
func appendString(b []byte, s string, short bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case short && c == '\b':
				b = append(b, '\\', 'b')
			case short && c == '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
