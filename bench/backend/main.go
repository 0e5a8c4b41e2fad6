// Command backend is the upstream server of the holdfast benchmark
// (bench/run.sh): it answers every request with 200 and a fixed body, doing
// as little work per request as net/http allows, with keep-alive on.
//
//	backend -addr 127.0.0.1:PORT [-size 1024]
//
// With -addr 127.0.0.1:0 the kernel picks the port; the address actually
// bound is printed on stdout as "listening 127.0.0.1:PORT" in every case.
// Every response carries "X-Backend: PORT", so that a check can see which
// backend answered (the script uses it to confirm round robin).
//
//	backend -freeports N
//
// prints N distinct free loopback ports (one a line) and exits: the kernel
// picks them by binding port 0, all N held open at once so that none repeats.
// The benchmark script uses this instead of guessing ports.
//
//	backend -addr 127.0.0.1:PORT -stats 127.0.0.1:PORT2
//
// also serves counters on a second listener, apart from the traffic being
// measured: GET /conns answers with the number of TCP connections the main
// listener has accepted since the start, GET /open with the number open now,
// each as a decimal number and a newline in text/plain. The stats listener's
// own connections are not counted. The benchmark script reads /conns before
// and after each run to see how many upstream connections a proxy opened.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "host:port to listen on (port 0: the kernel picks)")
	size := flag.Int("size", 1024, "response body size in bytes")
	freePorts := flag.Int("freeports", 0, "print this many free loopback ports and exit")
	statsAddr := flag.String("stats", "", "host:port of a second listener serving GET /conns and GET /open (off when empty)")
	flag.Parse()

	if *freePorts > 0 {
		if err := printFreePorts(*freePorts); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *size < 0 {
		log.Fatalf("-size must be >= 0, got %d", *size)
	}

	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	contentLength := []string{strconv.Itoa(len(body))}
	contentType := []string{"application/octet-stream"}
	var backendID []string // set once the port is known

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Direct map writes: no canonicalisation work per request.
		h["Content-Length"] = contentLength
		h["Content-Type"] = contentType
		h["X-Backend"] = backendID
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	backendID = []string{strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	fmt.Printf("listening %s\n", ln.Addr())

	// accepted counts every connection the main listener accepts (StateNew
	// is reported once per connection, before its first request is read);
	// open is accepted minus those closed or hijacked since.
	var accepted, open atomic.Int64
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second, // keep-alive is on by default
		ErrorLog:          log.New(os.Stderr, "backend: ", log.LstdFlags),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				accepted.Add(1)
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
	}

	if *statsAddr != "" {
		sln, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("stats %s\n", sln.Addr())
		mux := http.NewServeMux()
		counter := func(v *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				fmt.Fprintf(w, "%d\n", v.Load())
			}
		}
		mux.HandleFunc("GET /conns", counter(&accepted))
		mux.HandleFunc("GET /open", counter(&open))
		stats := &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(os.Stderr, "backend stats: ", log.LstdFlags),
		}
		go func() { log.Fatal(stats.Serve(sln)) }()
	}
	os.Stdout.Sync()

	log.Fatal(srv.Serve(ln))
}

func printFreePorts(n int) error {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
