package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An upstream that closes (FIN) right after a response without saying
// Connection: close; holdfast reuses the connection (busy pool: no peek).
func TestKeepAliveRaceDoesNotEjectOrMislearn(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer other.Close()
	e := newEnv(t, poolConfig("balance: round_robin", "http://"+ln.Addr().String(), other.URL), func(o *Options) {
		o.Transports = &Transports{Now: slowClock()}
	})
	for i := 0; i < 4; i++ {
		wantStatus(t, e.do("GET", "/", ""), 200)
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range e.accessLines() {
		t.Logf("%v", l["ledger"])
	}
	for _, s := range e.h.pools["p"].Servers {
		// A close right after a response says nothing of an idle timeout:
		// learning one would turn connection reuse off for a minute.
		if lim := s.State.IdleLimit(time.Now()); lim != 0 {
			t.Errorf("%s learned an idle limit of %v from a close after a response", s, lim)
		}
	}
	if n := e.events.ejected("http://" + ln.Addr().String()); n > 0 {
		t.Errorf("server ejected %d times for a closed pooled connection (the keep-alive race), though it answered every request it read", n)
	}
}
