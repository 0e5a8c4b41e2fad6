package h1

import (
	"bytes"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchServe measures one keep-alive request and response through serve
// (a loopback listener served by h1 or by net/http), with a client that
// allocates nothing: its cost per operation is the server's.
func benchServe(b *testing.B, serve func(net.Listener, http.Handler) func()) {
	body := bytes.Repeat([]byte("x"), 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = []string{"100"}
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop := serve(ln, h)
	defer stop()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	// One response, to learn its length.
	roundTrip := func(want int) int {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := c.Read(buf[n:])
			n += m
			if err != nil {
				b.Fatal(err)
			}
			if want > 0 && n >= want || want == 0 && bytes.HasSuffix(buf[:n], body) {
				return n
			}
		}
	}
	size := roundTrip(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(size)
	}
}

func BenchmarkServeH1(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

// BenchmarkServeNetHTTP is the same exchange through Go's own server, for
// comparison.
func BenchmarkServeNetHTTP(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &http.Server{Handler: h, ErrorLog: nil}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

// BenchmarkIdleConnMemory opens keep-alive connections that have each
// served one request and then wait, and reports what one costs the
// server: heap in use (spans holding objects), the live part of it, and
// goroutine stack, from runtime.MemStats, once the idle ones beyond keepGoroutineUpTo are parked
// (H1_PARK_ALL=1: all of them). The client's side is in the same process; its
// connections are plain sockets read through one shared buffer, so
// nearly all of the heap counted is the server's and the netpoller's.
func BenchmarkIdleConnMemory(b *testing.B) {
	// A browser's request: its head is what a connection could keep.
	idleReq := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("u", 120) +
		"\r\nAccept: text/html\r\nCookie: " + strings.Repeat("c", 1024) + "\r\n\r\n")
	const n = 2000
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = []string{"2"}
		w.Write([]byte("ok"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{Handler: h}
	go s.Serve(ln)
	defer s.Close()
	buf := make([]byte, 4096)
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			c.Write(idleReq)
			total := 0
			for !bytes.HasSuffix(buf[:total], []byte("ok")) {
				m, err := c.Read(buf[total:])
				if err != nil {
					b.Fatal(err)
				}
				total += m
			}
		}
		// Beyond keepGoroutineUpTo connections, the idle ones are parked
		// after parkAfter, without a goroutine.
		time.Sleep(parkAfter + 500*time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&after)
		// Signed: the stacks of goroutines that served the iteration
		// before may be freed meanwhile.
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-B/conn")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "live-B/conn")
		b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-B/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}
