package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/client"
)

// flaky returns a server that answers status to the first fails requests
// and 200 "ok" after that, and counts what it sees.
func flaky(status, fails int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= int64(fails) {
			http.Error(w, http.StatusText(status), status)
			return
		}
		io.WriteString(w, "ok")
	}))
	return srv, &n
}

// A plain client: two 502s are retried away and the caller sees the 200.
func ExampleNew() {
	srv, seen := flaky(http.StatusBadGateway, 2)
	defer srv.Close()

	// The defaults: 4 attempts, backoff from 100ms, budget, breaker; the
	// whole request, retries included, within 10s.
	c := client.New(client.WithTimeout(10 * time.Second))
	resp, err := c.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", seen.Load(), "requests")
	// Output: 200 ok after 3 requests
}

// A Transport used alone, around a base transport of the caller's.
func ExampleTransport() {
	srv, _ := flaky(http.StatusServiceUnavailable, 1)
	defer srv.Close()

	base := &http.Transport{MaxIdleConnsPerHost: 4}
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: &client.Transport{Base: base, BaseDelay: time.Millisecond}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// A POST is retried only if it never reached the server, or if it carries
// an Idempotency-Key; WithIdempotencyKeys adds one, the same on every
// attempt, for servers that deduplicate on it.
func ExampleWithIdempotencyKeys() {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		first := len(keys) == 1
		mu.Unlock()
		if first {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	c := client.New(client.WithIdempotencyKeys(), client.WithBackoff(time.Millisecond, 10*time.Millisecond))
	resp, err := c.Post(srv.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(resp.Status, "after", len(keys), "attempts; same key:", keys[0] != "" && keys[0] == keys[1])
	// Output: 201 Created after 2 attempts; same key: true
}

// Fallback base URLs: the primary is down (nothing listens), so the POST
// goes to the next base URL, path kept, and is delivered once.
func ExampleWithFallbacks() {
	backup, seen := flaky(0, 0)
	defer backup.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	primary := "http://" + ln.Addr().String()
	ln.Close() // now the primary refuses connections

	c := client.New(client.WithFallbacks(backup.URL))
	resp, err := c.Post(primary+"/orders", "text/plain", strings.NewReader("one order"))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fromBackup := resp.Request.URL.Host == strings.TrimPrefix(backup.URL, "http://")
	fmt.Println(resp.StatusCode, resp.Request.URL.Path, "from the backup:", fromBackup, "- requests it saw:", seen.Load())
	// Output: 200 /orders from the backup: true - requests it saw: 1
}

// Observing attempts, for a progress line, a log or a metric. (The wait is
// random, so this example prints the rest; AttemptInfo.String gives
// "retrying in 73ms (503 Service Unavailable, attempt 1/3)".)
func ExampleWithOnAttempt() {
	srv, _ := flaky(http.StatusServiceUnavailable, 5)
	defer srv.Close()

	c := client.New(
		client.WithMaxAttempts(3),
		client.WithBackoff(time.Millisecond, 10*time.Millisecond),
		client.WithOnAttempt(func(i client.AttemptInfo) {
			fmt.Printf("attempt %d/%d: %d %s, retry: %v", i.N, i.Max, i.Status, i.Cause, i.Retry)
			if i.Stop != "" {
				fmt.Printf(" (%s)", i.Stop)
			}
			fmt.Println()
		}),
	)
	resp, err := c.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("returned:", resp.Status)
	// Output:
	// attempt 1/3: 503 upstream_status, retry: true
	// attempt 2/3: 503 upstream_status, retry: true
	// attempt 3/3: 503 upstream_status, retry: false (attempts_exhausted)
	// returned: 503 Service Unavailable
}

// When no attempt got a response, the error says why, attempt by attempt.
func ExampleError() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()

	c := client.New(client.WithMaxAttempts(3), client.WithBackoff(time.Millisecond, time.Millisecond))
	_, err := c.Get(url)
	var ce *client.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Attempts, "attempts; last:", ce.Cause, "-", ce.Cause.Summary())
		for _, a := range ce.History {
			fmt.Println(a.N, a.Cause, a.Phase)
		}
		fmt.Println("cause.Of:", cause.Of(err))
	}
	// Output:
	// 3 attempts; last: connection_refused - the upstream refused the connection
	// 1 connection_refused connect
	// 2 connection_refused connect
	// 3 connection_refused connect
	// cause.Of: connection_refused
}

// Breaker transitions, for a metric or a log line, and the state read
// back per host.
func ExampleWithOnStateChange() {
	srv, _ := flaky(http.StatusServiceUnavailable, 100)
	defer srv.Close()

	c := client.New(
		client.WithMaxAttempts(1),
		client.WithBreaker(client.BreakerConfig{MinAttempts: 2, CoolDown: time.Minute}),
		client.WithOnStateChange(func(host string, from, to client.BreakerState) {
			// In production: a gauge per host, or log.Printf("%s: circuit %s", host, to).
			fmt.Printf("circuit: %s -> %s\n", from, to)
		}),
	)
	for range 3 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			fmt.Println("refused:", cause.Of(err))
			continue
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("now:", c.Transport.(*client.Transport).BreakerState(srv.URL))
	// Output:
	// 503 Service Unavailable
	// circuit: closed -> open
	// 503 Service Unavailable
	// refused: destination_unavailable
	// now: open
}

// Adaptive throttling: a server that turns away everything is soon spared
// most requests, which fail at once, locally, without using up its
// capacity for rejections. (The draws are random; the numbers printed hold
// whatever they are.)
func ExampleWithAdaptiveThrottling() {
	srv, seen := flaky(http.StatusServiceUnavailable, 1000)
	defer srv.Close()

	c := client.New(
		client.WithAdaptiveThrottling(2),
		client.WithMaxAttempts(1),
		client.WithBreaker(client.BreakerConfig{Disabled: true}), // to show throttling alone
	)
	var last *client.Error
	for range 100 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			errors.As(err, &last)
			continue
		}
		resp.Body.Close()
	}
	fmt.Println("refused locally:", last.Cause, last.Stop, errors.Is(last, client.ErrThrottled))
	fmt.Println("fewer than 20 of 100 reached the server:", seen.Load() < 20)
	// Output:
	// refused locally: destination_unavailable throttled true
	// fewer than 20 of 100 reached the server: true
}

// Hedging: the first request hangs (a stuck server behind a balancer, a
// lost packet); 50ms later a hedge goes out on a new connection and
// answers at once. The hung attempt is canceled.
func ExampleWithHedging() {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select { // hang until canceled
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		io.WriteString(w, "fast")
	}))
	defer srv.Close()

	c := client.New(
		client.WithHedging(50*time.Millisecond, 2),
		client.WithTimeout(10*time.Second),
		client.WithOnAttempt(func(i client.AttemptInfo) {
			fmt.Printf("attempt %d, hedge: %v, status %d", i.N, i.Hedge, i.Status)
			if i.Stop != "" {
				fmt.Printf(" (%s)", i.Stop)
			}
			fmt.Println()
		}),
	)
	start := time.Now()
	resp, err := c.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body), "in under a second:", time.Since(start) < time.Second, "- requests sent:", n.Load())
	// Output:
	// attempt 1, hedge: false, status 0 (superseded)
	// attempt 2, hedge: true, status 200
	// fast in under a second: true - requests sent: 2
}
