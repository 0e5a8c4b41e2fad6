package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/internal/ratelimit"
)

func Example() {
	perClient, err := ratelimit.ParseLimit("client_ip", "2/m", 2)
	if err != nil {
		panic(err)
	}
	perKey, err := ratelimit.ParseLimit("header:x-api-key", "1000/h", 0)
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := ratelimit.New(ratelimit.Options{Now: func() time.Time { return start }})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	route, err := l.Route("api", []ratelimit.Limit{perClient, perKey})
	if err != nil {
		panic(err)
	}

	req := http.Header{"X-Api-Key": {"k1"}}
	for range 3 {
		d := route.Allow(context.Background(), "192.0.2.7", req)
		h := http.Header{}
		d.WriteHeaders(h)
		fmt.Println(d.Allowed, h.Get("Retry-After"), h.Get("RateLimit"))
	}
	fmt.Println(route.Allow(context.Background(), "192.0.2.7", req).PolicyValue())
	fmt.Println(l.Status().Mode)
	// Output:
	// true  "client_ip";r=1;t=30
	// true  "client_ip";r=0;t=60
	// false 30 "client_ip";r=0;t=30
	// "client_ip";q=2;w=60, "header:X-Api-Key";q=1000;w=3600
	// local
}
