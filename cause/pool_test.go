package cause

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// send makes one request on tr with a tracker from AcquireTracker, reads
// and closes the response, and returns the tracker before and after its
// Release (read nothing from it after; the tests below look at the bits
// only to see whether it went back to the pool).
func send(t *testing.T, client *http.Client, method, url string, body io.Reader) (*Tracker, uint32) {
	t.Helper()
	tr := AcquireTracker()
	req, err := http.NewRequestWithContext(tr.WithContext(t.Context()), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	before := tr.life.Load()
	tr.Release()
	return tr, before
}

// released reports whether the tracker went back to the pool.
func released(tr *Tracker) bool { return tr.life.Load()&lifeReleased != 0 }

// TestPooledTrackerReuse: a tracker goes back to the pool only when its
// attempt took a kept-alive connection from the idle pool; an attempt that
// dialed keeps its tracker out of the pool for good (its dial's hooks are
// the attempt's, and a dial may run on after the attempt ends).
func TestPooledTrackerReuse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	first, _ := send(t, client, "GET", srv.URL, nil)
	if released(first) || first.life.Load()&lifeTainted == 0 {
		t.Errorf("the attempt that dialed: life %05b, want tainted and not released", first.life.Load())
	}
	second, _ := send(t, client, "GET", srv.URL, nil)
	if !released(second) {
		t.Errorf("an attempt on an idle connection: life %05b, want released", second.life.Load())
	}
}

// TestPooledTrackerWaitsForTheWrite: a server that answers before reading
// a large request body leaves net/http writing it after the caller has
// closed the response. The tracker must stay out of the pool until the
// write ends (its WroteRequest hook is still to come).
func TestPooledTrackerWaitsForTheWrite(t *testing.T) {
	var readBody = make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/early" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-readBody // answer first, read later
		}
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-readBody:
		default:
			close(readBody)
		}
	}()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	send(t, client, "GET", srv.URL, nil) // dials the connection the next one reuses

	tr := AcquireTracker()
	body := strings.NewReader(strings.Repeat("x", 16<<20)) // far beyond the socket buffers
	req, _ := http.NewRequestWithContext(tr.WithContext(t.Context()), "POST", srv.URL+"/early", body)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// The server has not read a byte of the body, so the write cannot
	// have ended. Release comes before the response is closed, on purpose:
	// closing it now would end the connection, and the write with it.
	tr.Release()
	if released(tr) || tr.life.Load()&lifeWriting == 0 {
		t.Fatalf("released while the request was still being written: life %05b", tr.life.Load())
	}
	close(readBody)
	deadline := time.Now().Add(5 * time.Second)
	for !released(tr) {
		if time.Now().After(deadline) {
			t.Fatalf("the write ended (or not) and the tracker was never released: life %05b", tr.life.Load())
		}
		time.Sleep(time.Millisecond)
	}
	resp.Body.Close()
}

// TestPooledTrackerNotReusedOverHTTP2: over HTTP/2, GotConn comes from
// net/http's HTTP/2 pool, whose WasIdle says only that the connection had
// no stream open; a dial may have been started for the attempt all the
// same, and may call its hooks after the attempt ends. Such a tracker never
// goes back to the pool.
func TestPooledTrackerNotReusedOverHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport).Clone()
	base.ForceAttemptHTTP2 = true
	client := &http.Client{Transport: base}
	defer client.CloseIdleConnections()
	send(t, client, "GET", srv.URL, nil) // dials
	tr, _ := send(t, client, "GET", srv.URL, nil)
	if tr.reused.Load() != true || tr.life.Load()&lifeGotConn == 0 {
		t.Fatalf("second request: reused %v life %05b, want a reused connection", tr.reused.Load(), tr.life.Load())
	}
	if released(tr) || tr.life.Load()&lifeTainted == 0 {
		t.Errorf("an HTTP/2 attempt: life %05b, want tainted and not released", tr.life.Load())
	}
}

// TestPooledTrackerContextDetaches: once its tracker is reused, a context
// from WithContext (kept by the caller as resp.Request's) no longer
// carries the hooks, and still carries its parent's values.
func TestPooledTrackerContextDetaches(t *testing.T) {
	type key struct{}
	parent := context.WithValue(t.Context(), key{}, "caller's")
	tr := AcquireTracker()
	ctx := tr.WithContext(parent)
	if httptrace.ContextClientTrace(ctx) != &tr.trace {
		t.Fatal("the context does not carry the tracker's hooks")
	}
	trace := httptrace.ContextClientTrace(ctx)
	trace.GotConn(httptrace.GotConnInfo{Reused: true, WasIdle: true})
	trace.WroteHeaders()
	trace.WroteRequest(httptrace.WroteRequestInfo{})
	trace.GotFirstResponseByte()
	if !tr.Written() || tr.Phase() != PhaseWait {
		t.Errorf("written %v phase %v, want true and wait", tr.Written(), tr.Phase())
	}
	tr.Release()
	if !released(tr) {
		t.Fatalf("life %05b: want released", tr.life.Load())
	}
	if got := httptrace.ContextClientTrace(ctx); got != nil {
		t.Errorf("after release the context still carries hooks: %p", got)
	}
	if v := ctx.Value(key{}); v != "caller's" {
		t.Errorf("after release the context's value is %v, want the parent's", v)
	}
}

// TestPooledTrackerComposes: a context that already carries a trace gets
// both, the caller's hooks still called, and the tracker is never reused.
func TestPooledTrackerComposes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	send(t, client, "GET", srv.URL, nil)

	var callerSaw atomic.Int32
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { callerSaw.Add(1) },
	})
	tr := AcquireTracker()
	req, _ := http.NewRequestWithContext(tr.WithContext(ctx), "GET", srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.Release()
	if callerSaw.Load() != 1 || tr.Phase() < PhaseWrite {
		t.Errorf("caller's GotConn called %d times, tracker phase %v: want both traces to see the request", callerSaw.Load(), tr.Phase())
	}
	if released(tr) {
		t.Error("a tracker composed with another trace went back to the pool")
	}
}

// TestPooledTrackersNeverShareHooks runs many requests at once through a
// transport that dials slowly, keeps few idle connections and sees some of
// them closed by the server, so that attempts wait for connections, get
// ones dialed for others, and leave dials running behind them: the cases
// in which net/http calls an attempt's hooks after it ended. Every hook
// call is checked to arrive while its tracker serves an attempt, never
// while it sits in the pool.
func TestPooledTrackersNeverShareHooks(t *testing.T) {
	var stray, calls atomic.Int64
	var mu sync.Mutex
	all := map[*Tracker]bool{}
	trackers.New = func() any {
		tr := newPooledTracker().(*Tracker)
		check := func() {
			calls.Add(1)
			if tr.life.Load()&lifeReleased != 0 {
				stray.Add(1)
			}
		}
		h := tr.trace
		tr.trace = httptrace.ClientTrace{
			DNSStart:             func(i httptrace.DNSStartInfo) { check(); h.DNSStart(i) },
			ConnectStart:         func(n, a string) { check(); h.ConnectStart(n, a) },
			TLSHandshakeStart:    func() { check(); h.TLSHandshakeStart() },
			GotConn:              func(i httptrace.GotConnInfo) { check(); h.GotConn(i) },
			WroteHeaders:         func() { check(); h.WroteHeaders() },
			WroteRequest:         func(i httptrace.WroteRequestInfo) { check(); h.WroteRequest(i) },
			GotFirstResponseByte: func() { check(); h.GotFirstResponseByte() },
		}
		tr.hooks = httptrace.WithClientTrace(context.Background(), &tr.trace)
		mu.Lock()
		all[tr] = true
		mu.Unlock()
		return tr
	}
	defer func() { trackers.New = newPooledTracker }()
	// Released trackers wait 20ms before going back to the pool: a hook
	// that comes later than it may finds its tracker out of use.
	var held atomic.Int64
	hold := func(tr *Tracker) {
		held.Add(1)
		time.AfterFunc(20*time.Millisecond, func() { trackers.Put(tr); held.Add(-1) })
	}
	holdBack.Store(&hold)
	defer func() {
		holdBack.Store(nil)
		for deadline := time.Now().Add(time.Second); held.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var n atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1)%7 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// TLS, because net/http takes a dial's trace when the dial begins and
	// calls its TLS hook only once connected: a slow connect leaves an
	// ended attempt's hook to come late.
	base := srv.Client().Transport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 2
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: base}

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				var body io.Reader
				method := "GET"
				if (g+i)%3 == 0 {
					method, body = "POST", strings.NewReader(strings.Repeat("b", 64<<10))
				}
				tr := AcquireTracker()
				req, _ := http.NewRequestWithContext(tr.WithContext(context.Background()), method, srv.URL, body)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				tr.Release()
			}
		}()
	}
	wg.Wait()
	base.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond) // let dials still running end

	mu.Lock()
	made := len(all)
	mu.Unlock()
	if s := stray.Load(); s != 0 {
		t.Errorf("%d of %d hook calls reached a tracker sitting in the pool", s, calls.Load())
	}
	// 960 requests: reuse must have happened, or the test proves nothing.
	if made >= 900 {
		t.Errorf("%d trackers made for 960 requests: none was reused", made)
	}
	t.Logf("960 requests, %d trackers made, %d hook calls", made, calls.Load())
}
