package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestCacheNoSessionLeak: a 304 that renews the requester's session cookie
// gives it to that client alone, never to the stored copy.
func TestCacheNoSessionLeak(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		if c, err := r.Cookie("sid"); err == nil {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: c.Value + "-rotated"})
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "public page")
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/p", nil)
	resp, _ := getWith(t, "http://"+addr+"/p", map[string]string{"Cookie": "sid=ALICE"})
	if got := resp.Header.Get("Set-Cookie"); !strings.Contains(got, "ALICE-rotated") {
		t.Errorf("alice's renewed cookie = %q, want it", got)
	}
	resp, _ = getWith(t, "http://"+addr+"/p", nil)
	if got := resp.Header.Values("Set-Cookie"); len(got) > 0 {
		t.Errorf("bob received %q", got)
	}
}

// TestCacheNoPerUserLeak: a response with a validator and no freshness
// (a per-user page, as frameworks send them by default) is never served
// stale to another client: not with max-stale, not through use_stale.
func TestCacheNoPerUserLeak(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "anonymous"
		if c, err := r.Cookie("user"); err == nil {
			name = c.Value
		}
		w.Header().Set("ETag", `W/"`+name+`"`)
		if r.Header.Get("X-Boom") != "" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"user":"`+name+`"}`)
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ", use_stale: [http_500, updating]"))
	getWith(t, "http://"+addr+"/api/me", map[string]string{"Cookie": "user=alice"})
	for _, hdr := range []map[string]string{
		{"Cache-Control": "max-stale"},
		{"Cookie": "user=mallory", "X-Boom": "1"},
		{},
	} {
		if _, body := getWith(t, "http://"+addr+"/api/me", hdr); strings.Contains(body, "alice") {
			t.Errorf("request with %v got alice's page: %s", hdr, body)
		}
	}
}

// TestCacheNoTruncatedStore: a body delimited by the close of the
// connection, which a crash cuts short unseen, is never stored.
func TestCacheNoTruncatedStore(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\n<html>half of the pa")
				c.Close()
			}(c)
		}
	}()
	_, addr := start(t, cacheConfig(t, "http://"+ln.Addr().String(), ""))
	getWith(t, "http://"+addr+"/t", nil)
	if resp, _ := getWith(t, "http://"+addr+"/t", nil); strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Errorf("a close-delimited body was stored: %q", resp.Header.Get("Cache-Status"))
	}
}

// TestCacheUnkeyedHeaders: headers that origins render or route by, and
// that the key does not hold, cannot put a response under a clean URL.
func TestCacheUnkeyedHeaders(t *testing.T) {
	t.Parallel()
	origin := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if m := r.Header.Get("X-HTTP-Method-Override"); m != "" && m != "GET" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		io.WriteString(w, `<script src="`+r.Header.Get("X-Forwarded-Prefix")+`/app.js">`)
	}))
	_, addr := start(t, cacheConfig(t, origin.URL, ""))
	getWith(t, "http://"+addr+"/home", map[string]string{"X-Forwarded-Prefix": "//evil.example"})
	if _, body := getWith(t, "http://"+addr+"/home", nil); strings.Contains(body, "evil") {
		t.Errorf("/home poisoned through X-Forwarded-Prefix: %s", body)
	}
	getWith(t, "http://"+addr+"/shop", map[string]string{"X_HTTP_Method_Override": "DELETE", "X-HTTP-Method-Override": "DELETE"})
	if resp, _ := getWith(t, "http://"+addr+"/shop", nil); resp.StatusCode != 200 {
		t.Errorf("/shop poisoned through a method override: %d", resp.StatusCode)
	}
}
