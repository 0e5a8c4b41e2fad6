package config

import (
	"time"

	"github.com/holdfast/holdfast/internal/limits"
)

// The defaults below are the ones written in the field comments of types.go
// and in docs/configuration.md; TestDocumentedDefaults holds the three
// together.

// defaultConditions is the default of retry.on and passive.fail_on: the
// outcomes that say the server, not the request, is at fault.
func defaultConditions() []string {
	return []string{"error", "timeout", "http_502", "http_503", "http_504"}
}

// newConfig returns a Config holding every top-level default. The decoder
// fills it in place, so a key that is absent keeps its default and a key
// that is present, even as zero, keeps what was written.
func newConfig(file string) *Config {
	return &Config{
		File:   file,
		Listen: []Listener{{Addr: ":8080", HTTP2: ptr(true)}},
		Client: ClientLimits{
			MaxHeaderBytes:    64 * kib,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       75 * time.Second,
			MaxHeaderCount:    100,
			BodyTimeout:       60 * time.Second,
			SendTimeout:       60 * time.Second,
			MaxConnections:    10000,
		},
		AccessLog: AccessLog{Path: "stdout", Flush: time.Second},
		Alerts:    Alerts{Format: "json", Interval: 10 * time.Second, ErrorPercent: 1},
		Cache:     CacheStore{MaxSize: 256 * mib, MaxObject: 8 * mib},
		Shutdown:  Shutdown{DrainTimeout: 30 * time.Second},
	}
}

// setDefaults fills a freshly allocated list or map element with its
// defaults before the decoder writes the keys present in the file.
func setDefaults(p any) {
	switch v := p.(type) {
	case *Listener:
		v.HTTP2 = ptr(true)
	case *Route:
		v.Match.PathPrefix = "/"
	case *Upstream:
		*v = Upstream{
			Balance: "round_robin",
			Hash:    "client_ip",
			Timeouts: Timeouts{
				// The tools that share these (the probe, the client
				// package) take them from package limits too.
				Connect: limits.ConnectTimeout,
				Send:    60 * time.Second,
				Read:    limits.ResponseHeaderTimeout,
				Idle:    limits.IdleConnTimeout,
			},
			Retry: Retry{
				On:         defaultConditions(),
				Tries:      3,
				Timeout:    30 * time.Second,
				BodyBuffer: 1 * mib,
				Backoff:    10 * time.Millisecond,
				BackoffMax: 250 * time.Millisecond,
				Budget:     20,
				BudgetMin:  10,
			},
			Passive: Passive{
				FailOn:            defaultConditions(),
				MaxEjectedPercent: 50,
				MaxEjectionTime:   300 * time.Second,
			},
			Health: Health{
				Interval: 5 * time.Second,
				Timeout:  2 * time.Second,
				Method:   "GET",
				Status:   "200-399",
				Rise:     2,
				Fall:     3,
			},
			DNS: DNS{Refresh: 30 * time.Second},
		}
	case *RouteCache:
		v.LockTimeout = 5 * time.Second
	case *RateLimit:
		v.Key = "client_ip"
	case *RateLimitStore:
		*v = RateLimitStore{StoreTimeout: 50 * time.Millisecond, Instances: 1}
	case *Breaker:
		*v = Breaker{ErrorRatio: 0.5, MinRequests: 20, Window: 10 * time.Second, OpenFor: 5 * time.Second,
			MaxOpenFor: 60 * time.Second, HalfOpenRequests: 3}
	case *Queue:
		*v = Queue{Size: 100, Timeout: time.Second}
	case *Adaptive:
		*v = Adaptive{MinLimit: 5, MaxLimit: 1000}
	case *Discover:
		v.Refresh = 10 * time.Second
		v.Scheme = "http"
		v.Server = ServerTemplate{MaxFails: ptr(1), FailTimeout: 10 * time.Second}
	case *Server:
		v.Weight = 1
		v.MaxFails = ptr(1)
		v.FailTimeout = 10 * time.Second
	}
}

func ptr[T any](v T) *T { return &v }
