package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/client"
)

// A response header section over 64 KiB is refused, with the cause that
// holdfast's gateway and probe give it; a caller that expects large
// headers raises the limit.
func ExampleWithMaxResponseHeaderBytes() {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("X-Debug", strings.Repeat("a", 100<<10)) // 100 KiB
	}))
	defer srv.Close()

	c := client.New(client.WithTimeout(10*time.Second), client.WithBackoff(time.Millisecond, time.Millisecond))
	_, err := c.Get(srv.URL)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Cause, "after", e.Attempts, "attempts")
	}

	c = client.New(client.WithTimeout(10*time.Second), client.WithMaxResponseHeaderBytes(1<<20))
	resp, err := c.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "with a 1 MiB limit;", seen.Load(), "requests in all")
	// Output:
	// http_response_header_section_size after 4 attempts
	// 200 OK with a 1 MiB limit; 5 requests in all
}
