package demo

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/holdfast/holdfast/cause"
)

// requestTimeout bounds one client request. Four tries at the demo's 800ms
// read timeout with backoff end well within it, so a client that gives up
// has found a gateway that hangs.
const requestTimeout = 10 * time.Second

// shape is what kind of request a client sends: the cases holdfast's retry
// rules tell apart (docs/design.md, "When a retry is safe").
type shape uint8

const (
	shapeGET       shape = iota // idempotent: retried on any listed condition
	shapePOSTKey                // POST with an Idempotency-Key: retried like a GET
	shapePOSTNoKey              // plain POST: retried only if provably never sent
)

func (s shape) String() string {
	switch s {
	case shapeGET:
		return "GET"
	case shapePOSTKey:
		return "POST with Idempotency-Key"
	}
	return "POST without Idempotency-Key"
}

// shapeOf gives request number n its shape: half GET, a quarter POST with a
// key, a quarter POST without. The shape is a hash of n rather than n%4, so
// that it does not fall into step with the backends' every-nth-request
// misbehaviour under round robin (which would send every 502 to the same
// shape), while staying the same from run to run.
func shapeOf(n int64) shape {
	switch mix(uint64(n)) % 4 {
	case 1:
		return shapePOSTKey
	case 3:
		return shapePOSTNoKey
	}
	return shapeGET
}

// mix is SplitMix64's finaliser: a cheap, well-spread hash of an integer.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// load drives requests at the gateway and counts what the clients saw. Its
// methods are safe for concurrent use.
type load struct {
	base    string // http://host:port of the gateway
	rate    int
	clients int
	client  *http.Client

	seq atomic.Int64

	mu sync.Mutex
	ok int64 // requests answered 2xx
	// pending are failed POSTs without Idempotency-Key whose access-log
	// line has not been read yet: whether holdfast was right not to resend
	// them depends on their ledger.
	pending   []clientFailure
	errs      outcome // failures holdfast should have absorbed
	notResent outcome // POSTs without key answered with the upstream's failure, by design
	// whyNotResent splits notResent by what the server that had the POST
	// did (notResentReason).
	whyNotResent map[string]int64
}

// outcome counts one class of failed requests, by status, and keeps the
// first few for the summary.
type outcome struct {
	n        int64
	byStatus map[int]int64
	examples []clientFailure
}

func (o *outcome) add(f clientFailure, keep int) {
	o.n++
	if o.byStatus == nil {
		o.byStatus = make(map[int]int64)
	}
	o.byStatus[f.status]++
	if len(o.examples) < keep {
		o.examples = append(o.examples, f)
	}
}

// clientFailure is one request whose client did not get a 2xx.
type clientFailure struct {
	id          string
	shape       shape
	method      string
	path        string
	status      int    // 0: no response
	err         string // what went wrong when there was no (whole) response
	proxyStatus string
	line        *AccessLine // the gateway's access-log line, once read
}

func newLoad(base string, rate, clients int) *load {
	tr := &http.Transport{
		Proxy:               nil, // the gateway is on loopback: never an environment proxy
		MaxIdleConnsPerHost: clients,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	return &load{
		base:    base,
		rate:    rate,
		clients: clients,
		client:  &http.Client{Transport: tr}, // each request has its own deadline
	}
}

// run sends about rate requests a second from clients goroutines until ctx
// ends, then waits for the requests in flight to finish (they are not
// cancelled: a request cut short by the demo's own stop would show as a
// client error that holdfast did not cause). The clients share one token
// bucket, so a client busy with a slow request does not slow the load.
func (l *load) run(ctx context.Context) {
	lim := rate.NewLimiter(rate.Limit(l.rate), 1)
	reqCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range l.clients {
		wg.Go(func() {
			for lim.Wait(ctx) == nil {
				l.one(reqCtx)
			}
		})
	}
	wg.Wait()
	l.client.CloseIdleConnections()
}

// one sends one request and counts its outcome.
func (l *load) one(ctx context.Context) {
	n := l.seq.Add(1)
	sh := shapeOf(n)
	id := "demo-" + strconv.FormatInt(n, 10)
	method, path := http.MethodGet, "/items/"+strconv.FormatInt(n, 10)
	var body io.Reader
	if sh != shapeGET {
		method, path = http.MethodPost, "/orders"
		body = strings.NewReader(`{"order":"` + id + `"}`)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, body)
	if err != nil {
		l.fail(clientFailure{id: id, shape: sh, method: method, path: path, err: err.Error()})
		return
	}
	req.Header.Set(headerRequestID, id)
	if sh != shapeGET {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerDemoID, id)
	}
	if sh == shapePOSTKey {
		req.Header.Set(headerIdemKey, id)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.fail(clientFailure{id: id, shape: sh, method: method, path: path, err: err.Error()})
		return
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case rerr != nil:
		l.fail(clientFailure{id: id, shape: sh, method: method, path: path, status: resp.StatusCode,
			err: "reading the body: " + rerr.Error(), proxyStatus: resp.Header.Get("Proxy-Status")})
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail(clientFailure{id: id, shape: sh, method: method, path: path, status: resp.StatusCode,
			proxyStatus: resp.Header.Get("Proxy-Status")})
	default:
		l.mu.Lock()
		l.ok++
		l.mu.Unlock()
	}
}

// maxExamples bounds the failed requests of each class kept for the summary.
const maxExamples = 20

func (l *load) fail(f clientFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f.shape == shapePOSTNoKey && f.status != 0 {
		l.pending = append(l.pending, f)
		return
	}
	l.errs.add(f, maxExamples)
}

// resolve classifies the pending failures whose access-log line has
// arrived. When final is set (the gateway has stopped, so every line it
// will write is written), a failure without a line is an error: the
// gateway answered without logging.
func (l *load) resolve(alog *accessLog, final bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := l.pending[:0]
	for _, f := range l.pending {
		f.line = alog.take(f.id)
		switch {
		case f.line != nil && sentAndUnsafe(f.line):
			l.notResent.add(f, maxExamples)
			if l.whyNotResent == nil {
				l.whyNotResent = make(map[string]int64)
			}
			l.whyNotResent[notResentReason(f.line)]++
		case f.line != nil || final:
			l.errs.add(f, maxExamples)
		default:
			rest = append(rest, f)
		}
	}
	clear(l.pending[len(rest):])
	l.pending = rest
	if final {
		for i := range l.errs.examples {
			if e := &l.errs.examples[i]; e.line == nil {
				e.line = alog.take(e.id)
			}
		}
	}
}

// sentAndUnsafe reports whether the ledger of a POST without
// Idempotency-Key shows that its last attempt reached an upstream that may
// have acted on it (an upstream error status, a timeout after the request
// was sent, a connection reset after it was written): sending it again
// could deliver it twice, so holdfast passes the failure on (docs/design.md).
func sentAndUnsafe(l *AccessLine) bool {
	if l.Method != http.MethodPost || len(l.Ledger) == 0 {
		return false
	}
	last := l.Ledger[len(l.Ledger)-1]
	c, ok := cause.Parse(last.Cause)
	return ok && !c.RetryableFor(false, last.Written)
}

// notResentReason says, in a few words for the display, what the server
// that had a POST without Idempotency-Key did, from the last attempt of its
// ledger (which sentAndUnsafe has accepted): it died with the POST (its
// connection was reset after the request was written), answered it with an
// error status, or did not answer within the read timeout.
func notResentReason(l *AccessLine) string {
	last := l.Ledger[len(l.Ledger)-1]
	c, _ := cause.Parse(last.Cause)
	switch {
	case c == cause.ConnectionTerminated || c == cause.HTTPResponseIncomplete:
		return "died"
	case c == cause.UpstreamStatus && last.Status != 0:
		return "answered " + strconv.Itoa(last.Status)
	case c.IsTimeout():
		return "timed out"
	}
	return last.Cause
}

// stats returns what the clients saw so far. A failed POST without
// Idempotency-Key whose access-log line has not been read yet is left out
// until resolve classifies it, within milliseconds: counted now, it would be
// a guess that the display might have to take back.
func (l *load) stats() ClientStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ClientStats{
		Requests:          l.ok + l.errs.n + l.notResent.n,
		OK:                l.ok,
		Errors:            l.errs.n,
		ErrorsByStatus:    maps.Clone(l.errs.byStatus),
		NotResent:         l.notResent.n,
		NotResentByReason: maps.Clone(l.whyNotResent),
	}
}
