package proxy

import (
	"fmt"
	"github.com/holdfast/holdfast/internal/cache"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/upstream"
)

func TestQuoteForwarded(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"127.0.0.1:8080":   `"127.0.0.1:8080"`,
		`we"ird\host`:      `"we\"ird\\host"`,
		"_hidden-node.1~x": "_hidden-node.1~x",
	} {
		if got := quoteForwarded(in); got != want {
			t.Errorf("quoteForwarded(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection":        {"keep-alive, X-Private"},
		"X-Private":         {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Te":                {"trailers"},
		"Upgrade":           {"websocket"},
		"X-Kept":            {"yes"},
	}
	removeHopHeaders(h)
	if len(h) != 1 || h.Get("X-Kept") != "yes" {
		t.Errorf("after removal: %v, want only X-Kept", h)
	}
	// A header larger than the list is probed name by name instead of
	// looked through: every hop-by-hop name goes either way.
	for _, extra := range []int{0, 20} {
		h := http.Header{}
		for _, k := range hopHeaders {
			if !isHopHeader(k) {
				t.Errorf("isHopHeader(%q) = false", k)
			}
			h[k] = []string{"x"}
		}
		for i := range extra {
			h[fmt.Sprintf("X-Kept-%d", i)] = []string{"y"}
		}
		removeHopHeaders(h)
		if len(h) != extra {
			t.Errorf("%d other fields: %d left after removal: %v", extra, len(h), h)
		}
	}
}

func TestLearnKeepAliveHint(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"timeout=5, max=100", 3750 * time.Millisecond}, // 5s less a quarter
		{"max=100, Timeout = 2", 1500 * time.Millisecond},
		{"timeout=0", 0},
		{"timeout=abc", 0},
		{"max=10", 0},
	} {
		s := &upstream.Server{State: new(upstream.State)}
		learnKeepAlive(s, tc.header, now)
		if got := s.State.IdleLimit(now); got != tc.want {
			t.Errorf("Keep-Alive: %s: idle limit %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestForwardedNode: RFC 7239 nodes for the addresses a peer can have,
// written as the address's canonical text whatever the raw form.
func TestForwardedNode(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8::1", `"[2001:db8::1]"`},
		{"2001:0db8:0:0:0:0:0:1", `"[2001:db8::1]"`},
		{"unknown host:80", `"unknown host:80"`},
	} {
		a, _ := netip.ParseAddr(tc.raw)
		if got := forwardedNode(a, tc.raw); got != tc.want {
			t.Errorf("forwardedNode(%q) = %s, want %s", tc.raw, got, tc.want)
		}
	}
}

// TestRequestIDBothWays: the upstream and the client see the same
// X-Request-Id, one holdfast made or a sane one the client sent; an
// upstream's own X-Request-Id on the response is left as it is.
func TestRequestIDBothWays(t *testing.T) {
	var seen []string
	var answer atomic.Value
	answer.Store("")
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Request-Id"))
		if v := answer.Load().(string); v != "" {
			w.Header().Set("X-Request-Id", v)
		}
	}))
	e := newEnv(t, poolConfig("", b.URL))
	r := e.do("GET", "/", "")
	if id := r.header.Get("X-Request-Id"); id == "" || len(seen) != 1 || seen[0] != id {
		t.Errorf("made ID: client got %q, upstream saw %q", id, seen)
	}
	r = e.do("GET", "/", "", "X-Request-Id", "client-42")
	if id := r.header.Get("X-Request-Id"); id != "client-42" || seen[1] != "client-42" {
		t.Errorf("client's ID: client got %q, upstream saw %q", id, seen[1])
	}
	answer.Store("upstream-7")
	r = e.do("GET", "/", "")
	if got := r.header.Values("X-Request-Id"); len(got) != 1 || got[0] != "upstream-7" {
		t.Errorf("upstream's own ID: client got %q, want [upstream-7]", got)
	}
}

// TestOutgoingHeaderStorageKeptApart: the outgoing header is built in
// storage the exchange keeps for the next one. Concurrent requests with
// headers of every size, some answered 204 (whose head the server writes
// after the handler returned), must each reach the upstream with their own
// fields and get their own X-Request-Id back.
func TestOutgoingHeaderStorageKeptApart(t *testing.T) {
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every padding field must be this request's own, and all of
		// them there: none left over from another request's header.
		mine, pads := r.Header.Get("X-Mine"), 0
		for k, vv := range r.Header {
			if strings.HasPrefix(k, "X-Pad-") {
				pads++
				if len(vv) != 1 || vv[0] != mine {
					mine = "foreign " + k + "=" + strings.Join(vv, ",")
				}
			}
		}
		if want := r.URL.Query().Get("pads"); fmt.Sprint(pads) != want {
			mine = fmt.Sprintf("%d padding fields, want %s", pads, want)
		}
		got := fmt.Sprintf("%s|%s|%d|%s", mine, r.Header.Get("X-Request-Id"), len(r.Header.Values("X-Pad")), r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Got", got)
		if r.URL.Query().Get("empty") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, got)
	}))
	e := newEnv(t, poolConfig("", be.URL))
	const workers, rounds = 8, 40
	errs := make(chan error, workers)
	for g := range workers {
		go func() {
			for i := range rounds {
				id := fmt.Sprintf("w%d-r%d", g, i)
				pads := (g*7 + i*3) % 40
				empty := i%2 == 1
				path := fmt.Sprintf("/?pads=%d", pads)
				if empty {
					path += "&empty=1"
				}
				hdr := []string{"X-Mine", id, "X-Request-Id", id, "Host", id + ".example"}
				for p := range pads {
					hdr = append(hdr, fmt.Sprintf("X-Pad-%d", p), id)
				}
				hdr = append(hdr, "X-Pad", id)
				r := e.do("GET", path, "", hdr...)
				want := fmt.Sprintf("%s|%s|1|%s.example", id, id, id)
				switch {
				case r.err != nil:
					errs <- r.err
					return
				case r.header.Get("X-Got") != want:
					errs <- fmt.Errorf("request %s reached the upstream as %q, want %q", id, r.header.Get("X-Got"), want)
					return
				case r.header.Get("X-Request-Id") != id:
					errs <- fmt.Errorf("request %s got X-Request-Id %q back", id, r.header.Get("X-Request-Id"))
					return
				case !empty && r.body != want:
					errs <- fmt.Errorf("request %s got body %q", id, r.body)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestPooledExchangeKeepsNoValues: the outgoing header's storage an
// exchange keeps for the next request is empty once the exchange is reset:
// a pooled exchange holds no request's cookies or credentials.
func TestPooledExchangeKeepsNoValues(t *testing.T) {
	x := new(exchange)
	in := http.Header{"Cookie": {"session=secret"}, "Authorization": {"Bearer secret"}, "Accept": {"a", "b"}}
	x.hdrMap, x.hdrVals = cloneHeader(nil, in, nil, forwardingFields)
	x.reset()
	if x.hdrMap == nil || x.hdrVals == nil {
		t.Fatal("the storage was not kept for the next exchange")
	}
	if len(x.hdrMap) != 0 {
		t.Errorf("kept map holds %d fields: %v", len(x.hdrMap), x.hdrMap)
	}
	for i, v := range x.hdrVals[:cap(x.hdrVals)] {
		if v != "" {
			t.Errorf("kept values array holds %q at %d", v, i)
		}
	}
}

// TestFieldIsGet: field answers as Header.Get for the canonical keys it is
// called with, and for a header whose keys are not all canonical.
func TestFieldIsGet(t *testing.T) {
	h := http.Header{
		"X-Request-Id": {"a", "b"},
		"Content-Type": {},
		"x-real-ip":    {"not canonical"},
		"Keep-Alive":   {""},
	}
	for _, k := range []string{"X-Request-Id", "Content-Type", "X-Real-Ip", "Keep-Alive", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%q is not canonical", k)
		}
		if got, want := field(h, k), h.Get(k); got != want {
			t.Errorf("field(%q) = %q, Get = %q", k, got, want)
		}
	}
}

// TestOutgoingHeader: the one-pass copy of a client's header for the
// upstream equals a full copy with the hop-by-hop fields, the fields the
// Connection field names and the forwarding lookalikes then deleted, and
// the client's header is left as it was.
func TestOutgoingHeader(t *testing.T) {
	for i, in := range []http.Header{
		{},
		{"Accept": {"*/*"}, "X-Kept": {"a", "b"}},
		{"Connection": {"keep-alive, x-private ,Upgrade", "close"}, "X-Private": {"1"}, "Keep-Alive": {"timeout=5"}, "Upgrade": {"h2c"}, "Accept": {"*/*"}},
		{"Te": {"trailers"}, "Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "Proxy-Authorization": {"Basic x"}, "Proxy-Connection": {"keep-alive"}, "X-Nil": nil},
		{"X_Real_IP": {"203.0.113.9"}, "X_Forwarded_For": {"203.0.113.9"}, "x_forwarded_proto": {"https"}, "X_Custom": {"kept"}, "Via": {"1.0 a"}},
		{"Connection": {"X_Custom, , Accept"}, "X_Custom": {"1"}, "Accept": {"*/*"}, "X-Other": {"2"}},
	} {
		before := in.Clone()
		want := in.Clone()
		removeHopHeaders(want)
		for k := range want {
			if isLookalike(k) {
				delete(want, k)
			}
		}
		got, _ := outgoingHeader(nil, in, nil, forwardingFields)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("header %d: outgoingHeader = %v, want %v", i, got, want)
		}
		// Into kept storage too, with a stale field in it.
		kept := http.Header{"X-Stale": {"old"}}
		got, _ = outgoingHeader(kept, in, make([]string, 1), forwardingFields)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("header %d into kept storage: %v, want %v", i, got, want)
		}
		if !reflect.DeepEqual(in, before) {
			t.Errorf("header %d: the client's header changed: %v, was %v", i, in, before)
		}
	}
}

// TestStoredHeaderIsTheUpstreams: a response stored in the cache keeps the
// upstream's header as it came, without the fields holdfast adds for the
// client that caused the store (its X-Request-Id, holdfast's Via element,
// an empty Content-Type): the client's header is a copy, never the
// upstream's map handed over.
func TestStoredHeaderIsTheUpstreams(t *testing.T) {
	b := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Via", "1.0 origin")
		w.Header()["Content-Type"] = nil // no Content-Type, and none sniffed
		io.WriteString(w, "stored")
	}))
	cfg := "routes:\n  - match: {path_prefix: /}\n    upstream: p\n    cache: {enabled: true}\nupstreams:\n  p:\n    servers:\n      - {url: \"" + b.URL + "\"}\n"
	e := newEnv(t, cfg)
	r := e.do("GET", "/c", "", "X-Request-Id", "first-client")
	if r.status != http.StatusOK || r.header.Get("X-Request-Id") != "first-client" {
		t.Fatalf("miss: status %d, X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	req := httptest.NewRequest("GET", e.URL+"/c", nil)
	rc := e.h.routeCacheOf(req)
	if rc == nil {
		t.Fatal("the route has no cache")
	}
	entry := rc.c.Lookup(req, cache.KeyOf(req, "http"))
	if entry == nil {
		t.Fatal("the response was not stored")
	}
	if v, ok := entry.Header["X-Request-Id"]; ok {
		t.Errorf("stored X-Request-Id %q: the first client's", v)
	}
	if v := entry.Header.Values("Via"); len(v) != 1 || v[0] != "1.0 origin" {
		t.Errorf("stored Via %q, want the upstream's [1.0 origin]", v)
	}
	if v, ok := entry.Header["Content-Type"]; ok {
		t.Errorf("stored Content-Type %q, want none", v)
	}
}
