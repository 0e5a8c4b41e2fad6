package gateway

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
)

// Request smuggling defence. Go's HTTP/1 server accepts a request carrying
// both Content-Length and Transfer-Encoding: it drops the Content-Length and
// reads the chunked body, which RFC 9112 section 6.3 permits, but a front
// proxy that believed the Content-Length then disagrees with holdfast about
// where the next request starts. holdfast refuses such requests instead: a
// framingConn follows the request stream of a plain HTTP/1 connection (heads,
// and bodies by their framing) and notes which requests were ambiguous, and
// the gateway answers those 400 and closes the connection.
//
// TLS listeners are not scanned: net/http must see the *tls.Conn itself to
// negotiate HTTP/2 and fill Request.TLS, so nothing can sit above TLS.

type framingListener struct {
	net.Listener
	maxHead int
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHead: l.maxHead}, nil
}

type framingKey struct{}

// framingOf returns the scanner of the connection that carried r, if any.
func framingOf(ctx context.Context) *framingConn {
	fc, _ := ctx.Value(framingKey{}).(*framingConn)
	return fc
}

const (
	stHead = iota
	stBody
	stChunkSize
	stChunkData
	stChunkCRLF
	stTrailers
	stOff // lost the framing (garbage, an upgrade): net/http rejects or owns it
)

type framingConn struct {
	net.Conn
	maxHead int

	mu          sync.Mutex
	state       int
	line        []byte
	headBytes   int
	headLines   int
	remaining   int64
	cl          []string
	te          string
	heads       int   // request heads seen
	flagged     []int // heads (1-based) whose framing is ambiguous
	lostAt      int   // heads seen when the scanner lost the framing; 0 if not
	served      int   // requests handed to the gateway, counted by it
	http10      bool  // the current head's request line is HTTP/1.0
	optionsStar bool  // the current head is "OPTIONS *"
	obsFold     bool  // the current head has a folded line
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scan(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// nextAmbiguous counts one request handed to the gateway and reports whether
// its framing is ambiguous: both Content-Length and Transfer-Encoding, a
// Transfer-Encoding on HTTP/1.0, a folded header line, or any request after
// the scanner lost track of the framing.
func (c *framingConn) nextAmbiguous() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served++
	if c.lostAt > 0 && c.served > c.lostAt {
		return true
	}
	for _, f := range c.flagged {
		if f == c.served {
			return true
		}
	}
	return false
}

// lose stops following the connection; later requests on it are refused.
func (c *framingConn) lose() {
	if c.state != stOff {
		c.state = stOff
		if c.lostAt == 0 {
			c.lostAt = max(c.heads, 1)
		}
	}
}

func (c *framingConn) scan(b []byte) {
	for len(b) > 0 && c.state != stOff {
		switch c.state {
		case stBody, stChunkData:
			k := int64(len(b))
			if k > c.remaining {
				k = c.remaining
			}
			b = b[k:]
			c.remaining -= k
			if c.remaining == 0 {
				if c.state == stBody {
					c.toHead()
				} else {
					c.state = stChunkCRLF
				}
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.appendLine(b)
				return
			}
			c.appendLine(b[:i])
			b = b[i+1:]
			line := bytes.TrimSuffix(c.line, []byte{'\r'})
			c.onLine(line)
			c.line = c.line[:0]
		}
	}
}

func (c *framingConn) toHead() {
	c.state, c.headBytes, c.headLines = stHead, 0, 0
}

func (c *framingConn) appendLine(b []byte) {
	c.line = append(c.line, b...)
	if c.state == stHead {
		c.headBytes += len(b)
	}
	if len(c.line) > c.maxHead || c.headBytes > c.maxHead {
		c.lose() // net/http answers 431 and closes
	}
}

func (c *framingConn) onLine(line []byte) {
	switch c.state {
	case stHead:
		if len(line) == 0 {
			if c.headLines == 0 {
				return // a stray CRLF between requests, as RFC 9112 tolerates
			}
			c.endHead()
			return
		}
		if c.headLines == 0 {
			c.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
			// net/http answers "OPTIONS *" itself, without the gateway:
			// such a head is not counted, so that counts stay in step.
			c.optionsStar = bytes.HasPrefix(line, []byte("OPTIONS * "))
		} else if line[0] == ' ' || line[0] == '\t' {
			c.obsFold = true // RFC 9112 5.2: a server may reject obs-fold; holdfast does
		} else {
			c.header(line)
		}
		c.headLines++
		c.headBytes++ // the line feed
	case stChunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			c.lose()
			return
		}
		if n == 0 {
			c.state = stTrailers
			return
		}
		c.state, c.remaining = stChunkData, n
	case stChunkCRLF:
		if len(line) != 0 {
			c.lose()
			return
		}
		c.state = stChunkSize
	case stTrailers:
		if len(line) == 0 {
			c.toHead()
		}
	}
}

func (c *framingConn) header(line []byte) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return // the request line
	}
	name := bytes.TrimSpace(line[:i])
	val := string(bytes.TrimSpace(line[i+1:]))
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		c.cl = append(c.cl, val)
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		if c.te != "" {
			c.te += ","
		}
		c.te += val
	}
}

func (c *framingConn) endHead() {
	if !c.optionsStar {
		c.heads++
	}
	cl, te, http10, fold := c.cl, c.te, c.http10, c.obsFold
	c.cl, c.te, c.http10, c.obsFold, c.optionsStar = c.cl[:0], "", false, false, false
	c.toHead()
	// RFC 9112 6.1 and 6.3: both lengths, or a Transfer-Encoding on
	// HTTP/1.0 (which net/http ignores, and a front proxy may not), leave
	// the framing to interpretation. A folded line may hide either.
	if (te != "" && len(cl) > 0) || (te != "" && http10) || fold {
		c.flagged = append(c.flagged, c.heads)
		// The connection is closed after the 400: stop following it.
		c.lose()
		return
	}
	switch {
	case te != "":
		codings := bytes.Split([]byte(te), []byte(","))
		if !bytes.EqualFold(bytes.TrimSpace(codings[len(codings)-1]), []byte("chunked")) {
			c.lose() // net/http refuses it (501) and closes
			return
		}
		c.state = stChunkSize
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 {
			c.lose() // net/http refuses it (400) and closes
			return
		}
		if n > 0 {
			c.state, c.remaining = stBody, n
		}
	}
}
