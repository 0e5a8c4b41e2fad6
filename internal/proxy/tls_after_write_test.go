package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A TLS upstream reads and acts on the request, then the connection breaks
// (a corrupted record: the client side raises a "local error" alert).
func TestTLSFailureAfterWriteDoesNotReplayPOST(t *testing.T) {
	ref := httptest.NewUnstartedServer(nil)
	ref.StartTLS()
	defer ref.Close()
	roots := ref.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	var posts atomic.Int64
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				tc := tls.Server(raw, ref.TLS.Clone())
				req, err := http.ReadRequest(bufio.NewReader(tc))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				posts.Add(1)
				// A record that fails authentication.
				raw.Write(append([]byte{0x17, 0x03, 0x03, 0x00, 0x20}, make([]byte, 32)...))
				time.Sleep(200 * time.Millisecond)
			}()
		}
	}()
	e := newEnv(t, poolConfig("", "https://"+ln.Addr().String()), func(o *Options) {
		o.Transports = &Transports{TLSConfig: &tls.Config{RootCAs: roots}}
	})
	r := e.do("POST", "/", "charge=100")
	t.Logf("status %d cause %q", r.status, r.proxyCause())
	for _, l := range e.accessLines() {
		t.Logf("%v", l["ledger"])
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("upstream received the POST %d times", n)
	}
}
