package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BackendAt is Backend on a given address: a server that comes back on the
// port where one died. Binding is retried briefly, since the port may still
// be held by the connections of the one that died.
func BackendAt(t testing.TB, addr string, h http.Handler) *Counting {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testutil: listen %s: %v", addr, err)
	}
	b := &Counting{seen: map[string]int{}}
	srv := httptest.NewUnstartedServer(b.wrap(h))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	b.Addr = ln.Addr().String()
	return b
}

// KillableBackend is Backend with a kill switch: kill closes the listener
// and every open connection at once, as a crashed process would, without
// waiting for requests in flight.
func KillableBackend(t testing.TB, h http.Handler) (b *Counting, kill func()) {
	t.Helper()
	b = &Counting{seen: map[string]int{}}
	srv := httptest.NewServer(b.wrap(h))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	b.Addr = srv.Listener.Addr().String()
	return b, func() {
		srv.Listener.Close()
		srv.CloseClientConnections()
	}
}
