package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// store puts a response with the given fields and body under the key of
// r, failing the test if it is refused.
func store(t *testing.T, c *Cache, r *http.Request, body string, kv ...string) {
	t.Helper()
	resp := response(200, kv...)
	if !c.Store(r, KeyOf(r, "http"), resp, []byte(body), t0, t0) {
		t.Fatalf("Store(%s %s) = false, want true", r.Method, r.URL)
	}
}

func get(target string, kv ...string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func newTestCache(t *testing.T, c Config) *Cache {
	t.Helper()
	if c.Now == nil {
		c.Now = func() time.Time { return t0 }
	}
	cache := New(c)
	t.Cleanup(cache.Close)
	return cache
}

func TestStoreLookup(t *testing.T) {
	c := newTestCache(t, Config{})
	r := get("http://example.com/a?b=1")
	store(t, c, r, "hello", "Cache-Control", "max-age=60", "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5")
	key := KeyOf(r, "http")
	e := c.Lookup(get("http://example.com/a?b=1"), key)
	if e == nil || string(e.Body) != "hello" {
		t.Fatalf("Lookup() = %v, want the stored entry", e)
	}
	for _, k := range []string{"Connection", "X-Hop", "Keep-Alive"} {
		if e.Header.Get(k) != "" {
			t.Errorf("stored header has hop-by-hop %s", k)
		}
	}
	if e.Header.Get("Date") == "" {
		t.Errorf("stored header has no Date, want the receipt time added")
	}
	head := httptest.NewRequest("HEAD", "http://example.com/a?b=1", nil)
	if c.Lookup(head, key) != e {
		t.Errorf("Lookup(HEAD) missed the stored GET")
	}
	if got := c.Lookup(httptest.NewRequest("POST", "http://example.com/a?b=1", nil), key); got != nil {
		t.Errorf("Lookup(POST) = %v, want nil", got)
	}
	if got := c.Lookup(r, KeyOf(get("http://example.com/a?b=2"), "http")); got != nil {
		t.Errorf("Lookup(other query) = %v, want nil", got)
	}
}

func TestVary(t *testing.T) {
	c := newTestCache(t, Config{})
	gz := get("http://example.com/v", "Accept-Encoding", "gzip", "Accept-Language", "en")
	br := get("http://example.com/v", "Accept-Encoding", "br", "Accept-Language", "en")
	key := KeyOf(gz, "http")
	store(t, c, gz, "gzip body", "Cache-Control", "max-age=60", "Vary", "Accept-Encoding, accept-language")
	if e := c.Lookup(br, key); e != nil {
		t.Fatalf("Lookup(br) = %q, want no variant: a gzip body must not answer br", e.Body)
	}
	store(t, c, br, "br body", "Cache-Control", "max-age=60", "Vary", "Accept-Encoding, Accept-Language")
	tests := []struct {
		r    *http.Request
		want string
	}{
		{get("http://example.com/v", "Accept-Encoding", "gzip", "Accept-Language", "en"), "gzip body"},
		{get("http://example.com/v", "Accept-Encoding", "br", "Accept-Language", "en"), "br body"},
		{get("http://example.com/v", "Accept-Encoding", "br", "Accept-Language", "de"), ""},
		{get("http://example.com/v", "Accept-Encoding", "gzip"), ""},
		{get("http://example.com/v"), ""},
	}
	for _, tt := range tests {
		e := c.Lookup(tt.r, key)
		got := ""
		if e != nil {
			got = string(e.Body)
		}
		if got != tt.want {
			t.Errorf("Lookup(%v) = %q, want %q", tt.r.Header, got, tt.want)
		}
	}
	// Field lines are compared normalised: "a, b" is "a,b".
	ab := get("http://example.com/n", "Accept", "a, b")
	store(t, c, ab, "n", "Cache-Control", "max-age=60", "Vary", "Accept")
	if c.Lookup(get("http://example.com/n", "Accept", "a", "Accept", "b"), KeyOf(ab, "http")) == nil {
		t.Errorf("Lookup(Accept: a / Accept: b) missed the variant stored for Accept: a, b")
	}
	// A second store of the same variant replaces it.
	store(t, c, gz, "gzip body 2", "Cache-Control", "max-age=60", "Vary", "Accept-Encoding, Accept-Language")
	if e := c.Lookup(gz, key); e == nil || string(e.Body) != "gzip body 2" {
		t.Errorf("Lookup(gz) after restore = %v, want the new body", e)
	}
	if v, _ := c.store.GetIfPresent(key); len(v.list) != 2 {
		t.Errorf("variants under key = %d, want 2", len(v.list))
	}
}

func TestStoreRefuses(t *testing.T) {
	c := newTestCache(t, Config{MaxObject: 10})
	r := get("http://example.com/big")
	if c.Store(r, KeyOf(r, "http"), response(200, "Cache-Control", "max-age=60"), make([]byte, 11), t0, t0) {
		t.Errorf("Store(11 bytes) with MaxObject 10 = true, want false")
	}
	resp := response(200, "Cache-Control", "max-age=60")
	resp.ContentLength = 10
	if c.Store(r, KeyOf(r, "http"), resp, make([]byte, 5), t0, t0) {
		t.Errorf("Store(5 of 10 announced bytes) = true, want false")
	}
	if c.Store(r, KeyOf(r, "http"), response(200, "Cache-Control", "no-store"), nil, t0, t0) {
		t.Errorf("Store(no-store) = true, want false")
	}
	if !c.Store(r, KeyOf(r, "http"), response(200, "Cache-Control", "max-age=60"), make([]byte, 10), t0, t0) {
		t.Errorf("Store(10 bytes) with MaxObject 10 = false, want true")
	}
}

func TestEvictionByBytes(t *testing.T) {
	const maxSize = 64 << 10
	c := newTestCache(t, Config{MaxSize: maxSize, MaxObject: 4 << 10})
	body := make([]byte, 1000)
	for i := range 500 {
		r := get(fmt.Sprintf("http://example.com/%d", i))
		store(t, c, r, string(body), "Cache-Control", "max-age=60")
	}
	c.store.CleanUp()
	st := c.Stats()
	if st.Bytes > maxSize {
		t.Errorf("Stats().Bytes = %d after filling, want at most %d", st.Bytes, maxSize)
	}
	if st.Entries == 0 || st.Entries >= 500 {
		t.Errorf("Stats().Entries = %d, want some but not all of 500", st.Entries)
	}
	// The newest response is readable at once: nothing is dropped on
	// the way in.
	last := get("http://example.com/new")
	store(t, c, last, "x", "Cache-Control", "max-age=60")
	if c.Lookup(last, KeyOf(last, "http")) == nil {
		t.Errorf("Lookup() right after Store() missed")
	}
	if st.Stored != 500 {
		t.Errorf("Stats().Stored = %d, want 500", st.Stored)
	}
}

func TestRefresh(t *testing.T) {
	now := t0
	c := newTestCache(t, Config{Now: func() time.Time { return now }})
	r := get("http://example.com/r")
	key := KeyOf(r, "http")
	store(t, c, r, "body", "Cache-Control", "max-age=60", "ETag", `"v1"`, "X-Old", "1", "Content-Type", "text/plain", "Date", date(t0))
	e := c.Lookup(r, key)

	later := t0.Add(2 * time.Minute)
	if e.Usable(r, later) != UseRevalidate {
		t.Fatalf("Usable() at +2m = %v, want revalidate", e.Usable(r, later))
	}
	out := http.Header{}
	e.Conditional(out)
	if out.Get("If-None-Match") != `"v1"` {
		t.Fatalf("Conditional() If-None-Match = %q", out.Get("If-None-Match"))
	}
	resp304 := response(304, "Cache-Control", "max-age=120", "ETag", `"v1"`, "X-Old", "2", "Date", date(later), "Content-Length", "0")
	ne := c.Refresh(r, key, e, resp304, later, later)
	if string(ne.Body) != "body" || ne.Status != 200 {
		t.Errorf("Refresh() = %d %q, want the stored 200 body", ne.Status, ne.Body)
	}
	if got := ne.Header.Get("X-Old"); got != "2" {
		t.Errorf("Refresh() X-Old = %q, want the 304's %q", got, "2")
	}
	if got := ne.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Refresh() Content-Type = %q, want it kept", got)
	}
	if !ne.Fresh(later.Add(time.Minute)) || ne.Age(later) != 0 {
		t.Errorf("Refresh() entry: fresh %v, age %v; want fresh with age 0", ne.Fresh(later.Add(time.Minute)), ne.Age(later))
	}
	if c.Lookup(r, key) != ne {
		t.Errorf("Lookup() after Refresh() is not the refreshed entry")
	}
	if e.Header.Get("X-Old") != "1" {
		t.Errorf("Refresh() changed the old entry in place")
	}
	// A 304 that forbids storing removes the entry but still answers.
	gone := c.Refresh(r, key, ne, response(304, "Cache-Control", "no-store"), later, later)
	if gone == nil || c.Lookup(r, key) != nil {
		t.Errorf("Refresh(no-store) = %v, lookup %v; want an entry to serve and none stored", gone, c.Lookup(r, key))
	}
}

func TestInvalidate(t *testing.T) {
	c := newTestCache(t, Config{})
	for _, u := range []string{"http://example.com/a", "http://example.com/b", "http://example.com/c?x", "http://other.com/d"} {
		store(t, c, get(u), "x", "Cache-Control", "max-age=60")
	}
	has := func(u string) bool { return c.Lookup(get(u), KeyOf(get(u), "http")) != nil }

	// A safe method or an error response invalidates nothing.
	c.Invalidate(get("http://example.com/a"), "http", response(200))
	c.Invalidate(httptest.NewRequest("POST", "http://example.com/a", nil), "http", response(500))
	if !has("http://example.com/a") {
		t.Fatalf("entry invalidated by GET or by a 500")
	}

	post := httptest.NewRequest("POST", "http://example.com/a", nil)
	c.Invalidate(post, "http", response(201, "Location", "/b", "Content-Location", "http://other.com/d"))
	if has("http://example.com/a") || has("http://example.com/b") {
		t.Errorf("POST /a with Location /b left /a or /b")
	}
	if !has("http://other.com/d") {
		t.Errorf("Content-Location on another host was invalidated")
	}
	c.Invalidate(httptest.NewRequest("DELETE", "http://example.com/x", nil), "http", response(204, "Content-Location", "c?x"))
	if has("http://example.com/c?x") {
		t.Errorf("relative Content-Location c?x not invalidated")
	}
}

func TestPurge(t *testing.T) {
	c := newTestCache(t, Config{})
	for _, u := range []string{"http://example.com/img/1", "http://example.com/img/2", "http://example.com/img", "http://example.com/css/1"} {
		store(t, c, get(u), "x", "Cache-Control", "max-age=60")
	}
	if n := c.Purge("http://example.com/img", false); n != 1 {
		t.Errorf("Purge(exact) = %d, want 1", n)
	}
	if n := c.Purge("http://example.com/nothing", false); n != 0 {
		t.Errorf("Purge(absent) = %d, want 0", n)
	}
	if n := c.Purge("http://example.com/img/", true); n != 2 {
		t.Errorf("Purge(prefix) = %d, want 2", n)
	}
	if c.Lookup(get("http://example.com/css/1"), "http://example.com/css/1") == nil {
		t.Errorf("Purge removed an entry outside the prefix")
	}
}

func TestLead(t *testing.T) {
	c := newTestCache(t, Config{})
	const n = 100
	var leaders, released atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	leaderDone := make(chan func(), 1)
	waiting := make(chan struct{}, n)
	for range n {
		wg.Go(func() {
			<-start
			leader, done, wait := c.Lead("k")
			if leader {
				leaders.Add(1)
				leaderDone <- done
				return
			}
			waiting <- struct{}{}
			if wait(context.Background(), time.Minute) {
				released.Add(1)
			}
		})
	}
	close(start)
	done := <-leaderDone
	for range n - 1 {
		<-waiting
	}
	done()
	done() // harmless twice
	wg.Wait()
	if leaders.Load() != 1 || released.Load() != n-1 {
		t.Errorf("Lead() x%d: %d leaders, %d released; want 1 and %d", n, leaders.Load(), released.Load(), n-1)
	}
	// Once done, the next caller leads again.
	if leader, done, _ := c.Lead("k"); !leader {
		t.Errorf("Lead() after done: leader = false, want true")
	} else {
		done()
	}
}

func TestLeadWaitGivesUp(t *testing.T) {
	c := newTestCache(t, Config{})
	_, done, _ := c.Lead("k")
	defer done()
	leader, _, wait := c.Lead("k")
	if leader {
		t.Fatalf("second Lead() is a leader")
	}
	if wait(context.Background(), 10*time.Millisecond) {
		t.Errorf("wait() past its timeout = true, want false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if wait(ctx, time.Minute) {
		t.Errorf("wait() with a cancelled context = true, want false")
	}
	// Another key is independent.
	if leader, d, _ := c.Lead("other"); !leader {
		t.Errorf("Lead(other) = not leader")
	} else {
		d()
	}
}

func TestStats(t *testing.T) {
	c := newTestCache(t, Config{})
	for _, r := range []string{ResultHit, ResultHit, ResultMiss, ResultStale, ResultCollapsed, ResultRevalidated, ResultBypass, "nonsense"} {
		c.Count(r)
	}
	store(t, c, get("http://example.com/s"), "12345", "Cache-Control", "max-age=60")
	st := c.Stats()
	want := Stats{Entries: 1, Bytes: st.Bytes, MaxBytes: defaultMaxSize, Hits: 2, Misses: 1, StaleServed: 1, Collapsed: 1, Revalidated: 1, Bypassed: 1, Stored: 1}
	if st != want || st.Bytes < 5 {
		t.Errorf("Stats() = %+v, want %+v", st, want)
	}
}

// TestThroughProxy runs the cache the way the proxy does, between a
// real client and a real backend, to show the calls fit together.
func TestThroughProxy(t *testing.T) {
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=1")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, "payload")
	}))
	defer backend.Close()

	c := newTestCache(t, Config{Now: time.Now})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := KeyOf(r, "http")
		e := c.Lookup(r, key)
		now := time.Now()
		switch e.Usable(r, now) {
		case UseFresh:
			e.WriteTo(w, r, CacheStatus(true, "", false, "", e.TTL(now)))
			return
		}
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, backend.URL+r.URL.RequestURI(), nil)
		if e != nil {
			e.Conditional(out.Header)
		}
		sent := time.Now()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusNotModified && e != nil {
			e = c.Refresh(r, key, e, resp, sent, time.Now())
			e.WriteTo(w, r, CacheStatus(false, FwdStale, true, "", e.TTL(time.Now())))
			return
		}
		stored := c.Store(r, key, resp, body, sent, time.Now())
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.Header().Set("Cache-Status", CacheStatus(false, FwdURIMiss, stored, "", 0))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	defer front.Close()

	fetch := func() (string, string) {
		resp, err := http.Get(front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Cache-Status")
	}
	if body, st := fetch(); body != "payload" || st != "holdfast; fwd=uri-miss; stored; ttl=0" {
		t.Errorf("first GET = %q, %q", body, st)
	}
	if body, st := fetch(); body != "payload" || st[:13] != "holdfast; hit" {
		t.Errorf("second GET = %q, %q, want a hit", body, st)
	}
	time.Sleep(1100 * time.Millisecond)
	if body, st := fetch(); body != "payload" || st[:20] != "holdfast; fwd=stale;" {
		t.Errorf("GET after expiry = %q, %q, want a revalidated stale entry", body, st)
	}
	if hits.Load() != 2 {
		t.Errorf("backend requests = %d, want 2 (one fetch, one revalidation)", hits.Load())
	}
}
