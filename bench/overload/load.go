package main

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// outcome is how one request ended, as the client saw it.
type outcome int

const (
	ok      outcome = iota // 2xx within the deadline
	shed                   // 503 from holdfast for a limit or no server (see isShed)
	timeout                // no complete answer within the client's deadline
	failed                 // any other status, or a connection error
)

// result is one request of the load.
type result struct {
	at      time.Duration // when it was sent, from the start of the run
	took    time.Duration // from sent to the end of the answer (or the error)
	outcome outcome
	detail  string // for failed: the status and Proxy-Status error, or the error
}

// isShed tells holdfast's refusals at a limit from other 503s: its
// Proxy-Status names the cause (RFC 9209), connection_limit_reached for a
// full limit and queue, destination_unavailable when no server is left.
func isShed(h http.Header) bool {
	ps := h.Get("Proxy-Status")
	return strings.Contains(ps, "connection_limit_reached") || strings.Contains(ps, "destination_unavailable")
}

// load is an open-loop load generator: requests leave at a fixed rate
// whether or not earlier ones were answered, as users arrive, so that a slow
// server cannot slow the load down and hide its own slowness (the mistake of
// closed-loop tools, which wait for an answer before sending again).
type load struct {
	client   *http.Client
	url      string
	rate     float64 // requests per second
	deadline time.Duration

	mu      sync.Mutex
	results []result
	maxLag  time.Duration // the furthest behind schedule a request left
}

func newLoad(url string, rate float64, deadline time.Duration) *load {
	tr := &http.Transport{
		// One connection per request in flight, kept for reuse: the
		// generator must never queue requests behind its own pool.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 100000,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: deadline}).DialContext,
	}
	return &load{client: &http.Client{Transport: tr}, url: url, rate: rate, deadline: deadline}
}

// run sends requests at the rate for d, then waits for the last answers
// (at most one deadline). It returns early when ctx ends.
func (g *load) run(ctx context.Context, d time.Duration) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / g.rate)
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		due := time.Duration(i) * interval
		if due >= d {
			break
		}
		if wait := time.Until(start.Add(due)); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-time.After(wait):
			}
		}
		lag := time.Since(start) - due
		g.mu.Lock()
		g.maxLag = max(g.maxLag, lag)
		g.mu.Unlock()
		wg.Go(func() { g.one(ctx, start) })
	}
	wg.Wait()
}

func (g *load) one(ctx context.Context, start time.Time) {
	ctx, cancel := context.WithTimeout(ctx, g.deadline)
	defer cancel()
	sent := time.Now()
	r := result{at: sent.Sub(start)}
	r.outcome, r.detail = g.send(ctx)
	r.took = time.Since(sent)
	if (r.outcome == ok || r.outcome == shed) && r.took > g.deadline {
		// Read in time by the transport's clock, but this goroutine ran
		// late (a busy machine): the client would not have had the answer
		// within its deadline.
		r.outcome = timeout
	}
	g.mu.Lock()
	g.results = append(g.results, r)
	g.mu.Unlock()
}

func (g *load) send(ctx context.Context) (outcome, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return failed, err.Error()
	}
	resp, err := g.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return timeout, ""
	case err != nil:
		return failed, errorKind(err)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return ok, ""
	case resp.StatusCode == http.StatusServiceUnavailable && isShed(resp.Header):
		return shed, ""
	}
	detail := resp.Status
	if ps := resp.Header.Get("Proxy-Status"); ps != "" {
		detail += " (" + ps + ")"
	}
	return failed, detail
}

// errorKind shortens a connection error to what it says, without the
// addresses that make each one different.
func errorKind(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before the answer"
	}
	return err.Error()
}

// take returns the results, in the order the requests were sent.
func (g *load) take() ([]result, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rs := g.results
	g.results = nil
	slices.SortFunc(rs, func(a, b result) int { return int(a.at - b.at) })
	return rs, g.maxLag
}

func (g *load) close() { g.client.CloseIdleConnections() }

// quantile returns the q-quantile of ds (nearest rank); ds is sorted in
// place. It returns -1 for no values.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	slices.Sort(ds)
	i := int(math.Ceil(float64(len(ds))*q)) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
