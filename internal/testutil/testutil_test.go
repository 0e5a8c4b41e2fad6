package testutil

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

// send writes one request on a fresh connection to addr and returns the
// connection for the test to read the answer.
func send(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("write: %v", err)
	}
	return c
}

func wantCounts(t *testing.T, f *Fault, conns, requests int64) {
	t.Helper()
	// The server counts after it reads; the client may be faster.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && (f.Conns.Load() != conns || f.Requests.Load() != requests) {
		time.Sleep(time.Millisecond)
	}
	if f.Conns.Load() != conns || f.Requests.Load() != requests {
		t.Errorf("conns, requests = %d, %d; want %d, %d", f.Conns.Load(), f.Requests.Load(), conns, requests)
	}
}

func TestDeadAddr(t *testing.T) {
	t.Parallel()
	addr := DeadAddr(t)
	_, err := net.DialTimeout("tcp", addr, time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial DeadAddr: %v, want connection refused", err)
	}
	if runtime.GOOS == "linux" {
		// The port stays taken until the test ends: no listener started
		// meanwhile (by a test running in parallel) can be given it.
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Errorf("a listener could bind DeadAddr's %s while it was held", addr)
		}
	}
}

func TestHang(t *testing.T) {
	t.Parallel()
	var c net.Conn
	t.Run("hangs", func(t *testing.T) {
		f := Hang(t)
		c = send(t, f.Addr)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read = %d, %v; want a timeout", n, err)
		}
		wantCounts(t, f, 1, 1)
	})
	// Cleanup closed the held connection.
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read after cleanup succeeded, want the connection closed")
	}
}

func TestResetAfterRequest(t *testing.T) {
	t.Parallel()
	f := ResetAfterRequest(t)
	_, err := io.ReadAll(send(t, f.Addr))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read: %v, want connection reset", err)
	}
	wantCounts(t, f, 1, 1)
}

func TestCloseAfterRequest(t *testing.T) {
	t.Parallel()
	f := CloseAfterRequest(t)
	b, err := io.ReadAll(send(t, f.Addr))
	if err != nil || len(b) != 0 {
		t.Errorf("read = %q, %v; want a clean EOF and nothing", b, err)
	}
	wantCounts(t, f, 1, 1)
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	f := Garbage(t)
	b, err := io.ReadAll(send(t, f.Addr))
	if err != nil || string(b) != GarbageResponse {
		t.Errorf("read = %q, %v; want %q", b, err, GarbageResponse)
	}
	wantCounts(t, f, 1, 1)
}

func TestRawAnswersNonHTTP(t *testing.T) {
	t.Parallel()
	f := Raw(t, "nope")
	c, err := net.Dial("tcp", f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "\x16\x03\x01\x00\x05hello\r\n\r\n") // not HTTP
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "nope" {
		t.Errorf("read = %q, %v; want %q", b, err, "nope")
	}
	wantCounts(t, f, 1, 0)
}

func TestBigHeader(t *testing.T) {
	t.Parallel()
	const n = 100 << 10
	f := BigHeader(t, n)
	c := &http.Client{Transport: &http.Transport{}} // the default limit is 10 MiB
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + f.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := len(resp.Header.Get("X-Big")); resp.StatusCode != 200 || got != n {
		t.Errorf("status %d, X-Big %d bytes; want 200, %d", resp.StatusCode, got, n)
	}
	wantCounts(t, f, 1, 1)
}

func TestResetMidBody(t *testing.T) {
	t.Parallel()
	f := ResetMidBody(t)
	br := bufio.NewReader(send(t, f.Addr))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response header: %v", err)
	}
	if resp.ContentLength != MidBodyLength {
		t.Errorf("Content-Length = %d, want %d", resp.ContentLength, MidBodyLength)
	}
	b, err := io.ReadAll(resp.Body)
	if len(b) != MidBodySent || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("body = %d bytes, %v; want %d bytes, then connection reset", len(b), err, MidBodySent)
	}
}

func TestNoAccept(t *testing.T) {
	t.Parallel()
	addr := NoAccept(t)
	start := time.Now()
	_, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial NoAccept: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("dial gave up after %v, want the full 100ms", d)
	}
}

func TestCleanupClosesListener(t *testing.T) {
	t.Parallel()
	var addrs []string
	t.Run("fixtures", func(t *testing.T) {
		addrs = append(addrs, Hang(t).Addr, Garbage(t).Addr, Backend(t, nil).Addr, NewTLSBackend(t, TLSValid, nil).Addr)
	})
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s after cleanup succeeded, want refused", addr)
		}
	}
}

func TestTLSBackend(t *testing.T) {
	t.Parallel()
	for _, kind := range []TLSKind{TLSValid, TLSExpired, TLSWrongName, TLSUnknownAuthority} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			b := NewTLSBackend(t, kind, nil)
			for _, name := range []string{"127.0.0.1", "localhost"} {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", b.Addr, &tls.Config{RootCAs: b.Roots, ServerName: name})
				if kind == TLSValid {
					if err != nil {
						t.Errorf("handshake as %s: %v", name, err)
						continue
					}
					c.Close()
					continue
				}
				if err == nil {
					c.Close()
					t.Errorf("handshake as %s succeeded, want a certificate error", name)
				}
			}
			if kind == TLSWrongName {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", b.Addr, &tls.Config{RootCAs: b.Roots, ServerName: "other.example"})
				if err != nil {
					t.Errorf("handshake as other.example: %v", err)
				} else {
					c.Close()
				}
			}
		})
	}
	t.Run("http2", func(t *testing.T) {
		t.Parallel()
		b := NewTLSBackend(t, TLSValid, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }))
		for _, h2 := range []bool{false, true} {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: b.ClientConfig(), ForceAttemptHTTP2: h2}}
			resp, err := c.Get(b.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
			if string(body) != want {
				t.Errorf("ForceAttemptHTTP2=%v: served %s, want %s", h2, body, want)
			}
			c.CloseIdleConnections()
		}
		if got := b.Requests.Load(); got != 2 {
			t.Errorf("Requests = %d, want 2", got)
		}
	})
}

func TestTLSRequireClientCert(t *testing.T) {
	t.Parallel()
	b := TLSRequireClientCert(t)
	get := func(certs []tls.Certificate) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: b.Roots, Certificates: certs}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: time.Second}).Get(b.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(nil); err == nil {
		t.Errorf("GET without a client certificate succeeded, want an alert")
	}
	if err := get([]tls.Certificate{b.ClientCert}); err != nil {
		t.Errorf("GET with the client certificate: %v", err)
	}
	if got := b.Requests.Load(); got != 1 {
		t.Errorf("Requests = %d, want 1", got)
	}
}

func TestDNS(t *testing.T) {
	t.Parallel()
	d := NewDNS(t, map[string][]string{
		"up.test":    {"127.0.0.1", "127.0.0.2"},
		"v6.test.":   {"::1"},
		"Mixed.Test": {"127.0.0.3", "::1"},
	})
	d.Silence("silent.test")
	r := d.Resolver()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()

	tests := []struct {
		name, network string
		want          string
	}{
		{"up.test", "ip4", "127.0.0.1 127.0.0.2"},
		{"UP.test.", "ip4", "127.0.0.1 127.0.0.2"},
		{"v6.test", "ip6", "::1"},
		{"mixed.test", "ip", "127.0.0.3 ::1"},
	}
	for _, tt := range tests {
		ips, err := r.LookupIP(ctx, tt.network, tt.name)
		if err != nil {
			t.Errorf("LookupIP(%s, %s): %v", tt.network, tt.name, err)
			continue
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		slices.Sort(got) // the resolver orders by RFC 6724
		if strings.Join(got, " ") != tt.want {
			t.Errorf("LookupIP(%s, %s) = %v, want %s", tt.network, tt.name, got, tt.want)
		}
	}

	_, err := r.LookupHost(ctx, "nx.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("LookupHost(nx.test) = %v, want not found", err)
	}

	short, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	before := d.Queries.Load()
	_, err = r.LookupHost(short, "silent.test")
	if !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Errorf("LookupHost(silent.test) = %v, want a timeout", err)
	}
	if d.Queries.Load() == before {
		t.Errorf("the silent name was never asked: the resolver went elsewhere")
	}
}

func TestBackend(t *testing.T) {
	t.Parallel()
	b := Backend(t, nil)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for _, id := range []string{"a", "b", "a", ""} {
		req, _ := http.NewRequest("GET", b.URL, nil)
		if id != "" {
			req.Header.Set(TestIDHeader, id)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if b.Requests.Load() != 4 || b.Seen("a") != 2 || b.Seen("b") != 1 || b.Seen("c") != 0 {
		t.Errorf("Requests %d, Seen(a) %d, Seen(b) %d, Seen(c) %d; want 4, 2, 1, 0", b.Requests.Load(), b.Seen("a"), b.Seen("b"), b.Seen("c"))
	}
}
