// Package ratelimit enforces a route's rate limits: token buckets per key
// value, kept locally or shared between gateways through Redis.
//
// A route has a list of limits, each "at most N requests per second, minute
// or hour for each value of a key, with bursts of B": the key is the client's
// address, a request header's value, or the route itself (one bucket for
// all). Every limit must allow a request; a refused request takes no token
// from any of them.
//
// # Local and shared
//
// Without a store each gateway limits on its own, with golang.org/x/time/rate
// buckets kept in a bounded LRU per limit (Options.MaxKeys, 100,000 by
// default), so that a flood of distinct keys costs bounded memory; key
// values longer than 64 bytes are kept as a digest.
//
// With a store (StoreOptions, the configuration's rate_limit_store) the
// counters live in Redis, where a Lua script decides a request against all
// the limits of its route in one round trip, with GCRA on Redis's clock.
// Keys read <prefix><route>:<limit index>:<key value> and expire once their
// bucket is full. When Redis refuses, fails or is slower than
// StoreOptions.Timeout, the request is decided locally and the Limiter falls
// back to local buckets that allow each gateway its share (rate and burst
// divided by StoreOptions.Instances); it logs the change once, and a
// goroutine probes Redis every StoreOptions.ProbeInterval until it answers,
// when the limits are shared again. Requests never wait for a Redis known
// to be down, and never see an error: Allow always decides.
//
// # Use
//
// A gateway builds one Limiter, a Route per route with limits, and asks the
// Route about every request, after routing and before anything else:
//
//	lim, err := ratelimit.ParseLimit("header:X-Api-Key", "100/s", 20) // config validation
//	l, err := ratelimit.New(ratelimit.Options{Store: &ratelimit.StoreOptions{URL: url, Timeout: 50 * time.Millisecond, Instances: 2}})
//	defer l.Close()
//	route, err := l.Route("api", []ratelimit.Limit{lim})
//	...
//	if d := route.Allow(r.Context(), clientIP, r.Header); !d.Allowed {
//		d.WriteHeaders(w.Header()) // Retry-After, RateLimit, RateLimit-Policy
//		// answer 429
//	}
//
// Limiter.Status reports the mode (local, shared or local-fallback), since
// when, and the last error, for the admin API. Everything here is safe for
// concurrent use.
//
// # Headers
//
// WriteHeaders follows draft-ietf-httpapi-ratelimit-headers-10: one
// RateLimit-Policy item per limit of the route, named by its key,
//
//	RateLimit-Policy: "client_ip";q=100;w=1, "header:X-Api-Key";q=1000;w=3600
//
// and a RateLimit item for the limit that refused (or, when allowed, the one
// with the fewest requests remaining), whose t is Retry-After's value on a
// refusal:
//
//	RateLimit: "client_ip";r=0;t=3
package ratelimit
