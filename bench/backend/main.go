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
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "host:port to listen on (port 0: the kernel picks)")
	size := flag.Int("size", 1024, "response body size in bytes")
	freePorts := flag.Int("freeports", 0, "print this many free loopback ports and exit")
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
	os.Stdout.Sync()

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second, // keep-alive is on by default
		ErrorLog:          log.New(os.Stderr, "backend: ", log.LstdFlags),
	}
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
