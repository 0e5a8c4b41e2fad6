// Command idleconns opens many HTTP/1.1 keep-alive connections to one server
// and holds them idle, for bench/idle.sh, which measures what idle client
// connections cost a proxy in memory.
//
//	idleconns -addr 127.0.0.1:PORT [-n 10000] [-sources 0] [-concurrency 64] [-every 0]
//
// It raises its own RLIMIT_NOFILE as far as it needs and may, then opens -n
// connections, -concurrency at a time. On each it sends one
// "GET -path HTTP/1.1" request and reads the whole response, which must be a
// 2xx that leaves the connection open (no "Connection: close"), so that every
// connection has served a request and sits idle in keep-alive on the server.
// Any failure stops the program with exit status 1: the count it reports is
// exact or there is none.
//
// The connections come from -sources loopback source addresses, 127.0.0.1,
// 127.0.0.2 and so on, used in turn (0: as many as needed for about 20,000
// connections per address, as each source address has one ephemeral port
// range of its own).
//
// Progress goes to stderr. On stdout it prints, one a line:
//
//	ready N          every connection is open and has been answered
//	open M of N      when told to stop: how many the server had kept open
//	closed N         all connections closed; the program then exits
//
// With -every D, the connections do not stay idle: each makes its request
// again every D, give or take a quarter of it (at random, so that they do
// not come back together), on the same connection, until told to stop. A
// server that parks a connection idle for less than D then parks and wakes
// each of them again and again; bench/run.sh uses it (WAKERS) to measure a
// proxy with such clients beside its busy ones. Each request must be
// answered as the first was; a connection whose request fails is closed
// and makes no more. When told to stop, it prints one line more, before
// "open":
//
//	again R failed F  requests made again and answered, connections failed
//
// It holds the connections until its standard input reaches end of file or
// it gets SIGINT or SIGTERM. It then checks each connection without
// blocking (a connection the server closed reads end of file at once), and
// closes them all with a reset, which leaves no TIME_WAIT behind.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "", "host:port of the server (required)")
	n := flag.Int("n", 10000, "connections to open and hold")
	sources := flag.Int("sources", 0, "loopback source addresses to use, 127.0.0.1 upwards (0: enough for about 20000 connections each)")
	concurrency := flag.Int("concurrency", 64, "connections being opened at once")
	path := flag.String("path", "/", "request path")
	timeout := flag.Duration("timeout", 10*time.Second, "bound on connecting and on each request")
	every := flag.Duration("every", 0, "make each connection's request again this often, ±25% (0: hold them idle)")
	flag.Parse()
	if *addr == "" || *n < 1 || *concurrency < 1 || *sources < 0 || *sources > 254 || *every < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *sources == 0 {
		*sources = (*n + perSource - 1) / perSource
	}
	if *sources > 254 {
		fatalf("-n %d needs more than 254 source addresses", *n)
	}

	if err := raiseNoFile(uint64(*n) + 64); err != nil {
		fatalf("%v", err)
	}

	conns := make([]net.Conn, *n)
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	var failed atomic.Bool

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: idleconns\r\n\r\n")
	dialers := make([]*net.Dialer, *sources)
	for i := range dialers {
		dialers[i] = &net.Dialer{
			Timeout:   *timeout,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))},
			// No TCP keep-alive probes: they would wake the server's
			// side of an idle connection.
			KeepAlive: -1,
		}
	}

	start := time.Now()
	stopProgress := progress(&done, *n)
	var wg sync.WaitGroup
	for range min(*concurrency, *n) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, err := openOne(dialers[i%len(dialers)], *addr, req, *timeout)
				if err != nil {
					failed.Store(true)
					fail(fmt.Errorf("connection %d (from %s): %w", i+1, dialers[i%len(dialers)].LocalAddr, err))
					return
				}
				conns[i] = c
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stopProgress()
	if firstErr != nil {
		closeAll(conns)
		fatalf("%v", firstErr)
	}
	fmt.Fprintf(os.Stderr, "idleconns: %d connections open and answered in %.1fs, from %d source address(es)\n",
		*n, time.Since(start).Seconds(), *sources)
	fmt.Printf("ready %d\n", *n)

	var again *repeater
	if *every > 0 {
		again = repeat(conns, req, *every, *timeout)
	}

	// Hold until stdin closes or a signal comes.
	stop := make(chan string, 2)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop <- "end of standard input"
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { stop <- (<-sigs).String() }()
	why := <-stop
	fmt.Fprintf(os.Stderr, "idleconns: %s: checking and closing the connections\n", why)

	if again != nil {
		again.stop()
		fmt.Printf("again %d failed %d\n", again.done.Load(), again.failed.Load())
		if err := again.firstErr(); err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: first failure: %v\n", err)
		}
	}
	fmt.Printf("open %d of %d\n", countOpen(conns), *n)
	closeAll(conns)
	fmt.Printf("closed %d\n", *n)
}

// perSource is how many connections one source address takes at most when
// -sources is 0: comfortably below the 28,232 ports of Linux's default
// ephemeral range (32768-60999), some of which other sockets may hold.
const perSource = 20000

// repeater makes each connection's request again and again (-every).
type repeater struct {
	quit   chan struct{}
	wg     sync.WaitGroup
	done   atomic.Int64 // requests answered
	failed atomic.Int64 // connections whose request failed (closed)
	mu     sync.Mutex
	first  error
}

// repeat starts a goroutine per connection that, every d ±25%, sends req
// and reads the whole response, which must be what openOne requires. A
// connection that fails is closed, its slot set to nil, and counted.
func repeat(conns []net.Conn, req []byte, d, timeout time.Duration) *repeater {
	r := &repeater{quit: make(chan struct{})}
	for i := range conns {
		c := conns[i]
		r.wg.Go(func() {
			br := bufio.NewReaderSize(c, 4096)
			t := time.NewTimer(jitter(d))
			defer t.Stop()
			for {
				select {
				case <-r.quit:
					return
				case <-t.C:
				}
				if err := exchange(c, br, req, timeout); err != nil {
					r.failed.Add(1)
					r.mu.Lock()
					if r.first == nil {
						r.first = fmt.Errorf("connection %d: %w", i+1, err)
					}
					r.mu.Unlock()
					c.Close()
					conns[i] = nil
					return
				}
				r.done.Add(1)
				t.Reset(jitter(d))
			}
		})
	}
	return r
}

// stop ends the repetitions and waits for requests in flight.
func (r *repeater) stop() {
	close(r.quit)
	r.wg.Wait()
}

func (r *repeater) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// jitter returns d ±25%, at random.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// openOne connects, sends req and reads the whole response. The connection
// is returned open, with no deadline, once the response has been read.
func openOne(d *net.Dialer, addr string, req []byte, timeout time.Duration) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := exchange(c, bufio.NewReaderSize(c, 4096), req, timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// exchange sends req on c and reads the whole response from br (c's
// reader), within timeout. The response must be a 2xx that keeps the
// connection open, with nothing after it. c is left with no deadline.
func exchange(c net.Conn, br *bufio.Reader, req []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("writing the request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the response body: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		return errors.New("the server closes the connection after the response (Connection: close)")
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("%d unexpected bytes after the response", br.Buffered())
	}
	c.SetDeadline(time.Time{})
	return nil
}

// countOpen reports how many connections are still open. Each is read
// with a short deadline, all at once: the read returns end of file (or a
// reset) at once on a connection the server closed, and times out on an
// open, silent one. (A deadline already past would not do: Go then fails
// the read without looking at the socket.)
func countOpen(conns []net.Conn) int {
	var open atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(200 * time.Millisecond)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			c.SetReadDeadline(deadline)
			var b [1]byte
			_, err := c.Read(b[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	return int(open.Load())
}

// closeAll closes the connections with a reset (SO_LINGER 0) rather than
// a FIN: a normal close would leave each of them in TIME_WAIT on this side
// for a minute, and a few runs in a row would then run out of the source
// address's ports.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// progress prints how many connections are ready, once a second, until the
// returned function is called.
func progress(done *atomic.Int64, n int) func() {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "idleconns: %d of %d open\n", done.Load(), n)
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "idleconns: "+format+"\n", args...)
	os.Exit(1)
}
