package cause_test

import (
	"errors"
	"fmt"
	"net"

	"github.com/holdfast/holdfast/cause"
)

// A dial to a port where nothing listens: the cause, what the gateway
// answers, whether a POST may be retried, and the lines for the log and for
// the client.
func ExampleClassify() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens on addr

	_, err = net.Dial("tcp", addr)
	c := cause.Classify(err, cause.PhaseConnect)
	fmt.Println(c, c.Status(), c.Safety())
	fmt.Println("retry a POST:", c.RetryableFor(cause.IdempotentMethod("POST"), false))
	fmt.Println(c.Explain("10.0.0.7:8080"))
	fmt.Println(c.Summary())
	// Output:
	// connection_refused 502 never_sent
	// retry a POST: true
	// the upstream refused the connection: nothing listens on 10.0.0.7:8080
	// the upstream refused the connection
}

// An *Error fixes the cause of what it wraps, however deep it is wrapped.
func ExampleError() {
	err := fmt.Errorf("attempt 2: %w", &cause.Error{
		Cause: cause.DestinationUnavailable,
		Addr:  "pool api",
		Err:   errors.New("every server is ejected"),
	})
	fmt.Println(cause.Of(err))
	fmt.Println(err)
	// Output:
	// destination_unavailable
	// attempt 2: destination_unavailable (pool api): every server is ejected
}
