package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/holdfast/holdfast/internal/h1"
	"github.com/holdfast/holdfast/internal/testutil"
)

// BenchmarkServeHTTP measures the proxy's own cost per request: a GET through
// the handler (called directly, no client-side network) to a real loopback
// backend over pooled keep-alive connections.
func BenchmarkServeHTTP(b *testing.B) {
	be := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	cfg := poolConfig("", be.URL)
	h := benchHandler(b, "access_log: {path: \"off\"}\n"+cfg)
	req := httptest.NewRequest("GET", "http://example.com/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkHoldfastPath measures what holdfast itself allocates and spends
// per proxied request on its production path: a keep-alive client
// connection to holdfast's HTTP/1.1 server (internal/h1), the proxy, and a
// pooled connection to a backend that answers every request with the same
// bytes without allocating. The client is a raw socket read through one
// buffer, so every allocation counted is holdfast's.
func BenchmarkHoldfastPath(b *testing.B) {
	be := cannedBackend(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	h := benchHandler(b, "access_log: {path: \"off\"}\n"+poolConfig("", "http://"+be))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &h1.Server{Handler: h}
	go s.Serve(ln)
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nhello")) {
			m, err := c.Read(buf[n:])
			n += m
			if err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
			b.Fatalf("response %q", buf[:n])
		}
	}
	roundTrip()
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}

// cannedBackend answers every request head it reads on a connection with
// resp, allocating nothing per request. Requests must have no body.
func cannedBackend(b *testing.B, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	out := []byte(resp)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 8192)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(out); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
					if n == len(buf) {
						return // a head larger than the buffer: not for this backend
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
