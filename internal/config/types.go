// Package config turns a holdfast YAML file into plain structs: it decodes,
// rejects unknown keys, fills in defaults and validates, and every error it
// reports names the file, the line and the key.
//
// The structs below hold the configuration after defaults were applied by
// [Load] or [Parse]: a zero field in a struct built by hand means the default
// written in its comment only where the comment says so.
package config

import "time"

// Config is one whole holdfast configuration.
type Config struct {
	// File is the path the configuration was loaded from ("" when parsed
	// from bytes without a name). Not a YAML key.
	File string `yaml:"-"`

	// Listen lists the client-facing listeners. Default: one plain HTTP
	// listener on ":8080".
	Listen []Listener `yaml:"listen"`
	// Admin is the admin listener (metrics, API, dashboard).
	Admin Admin `yaml:"admin"`
	// Routes map requests to upstreams. The longest matching path prefix
	// wins among routes whose host matches; a route without host matches any.
	Routes []Route `yaml:"routes"`
	// Upstreams are the named pools of servers, in file order.
	Upstreams []*Upstream `yaml:"upstreams"`

	// TrustedProxies lists CIDRs (or single addresses) whose
	// X-Forwarded-* and Forwarded headers are believed. Default: none, so
	// those headers from clients are replaced. After Load each entry is a
	// canonical CIDR ("10.0.0.1" becomes "10.0.0.1/32").
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ExposeDetails puts internal addresses and error text into error
	// responses sent to clients. Default false: they go to the log only.
	ExposeDetails bool `yaml:"expose_details"`

	// Client holds the limits applied to client connections and requests.
	Client ClientLimits `yaml:"client"`
	// AccessLog configures the JSON access log.
	AccessLog AccessLog `yaml:"access_log"`
	// Shutdown configures graceful shutdown.
	Shutdown Shutdown `yaml:"shutdown"`
	// Alerts configures the built-in alert webhook, for those who run no
	// Prometheus. Off unless Alerts.Webhook is set.
	Alerts Alerts `yaml:"alerts"`
	// RateLimitStore, when set, shares the routes' rate limits across
	// instances through Redis. Default nil: each instance limits alone.
	RateLimitStore *RateLimitStore `yaml:"rate_limit_store"`
	// Cache is the shared store of the routes that cache.
	Cache CacheStore `yaml:"cache"`
}

// Alerts configures the built-in alert webhook: the conditions of the
// shipped Prometheus rules, evaluated in the process.
type Alerts struct {
	// Webhook is the http or https URL that alerts are POSTed to when they
	// start and when they resolve. Default "": off.
	Webhook string `yaml:"webhook"`
	// Format is the body: "json" (holdfast's own message) or "slack" (a
	// Slack-compatible incoming-webhook message). Default json.
	Format string `yaml:"format"`
	// Interval is how often the conditions are evaluated. Default 10s.
	Interval time.Duration `yaml:"interval"`
	// ErrorPercent is the share of a route's requests answered 502, 503 or
	// 504 over 5 minutes, in percent, above which an alert fires (and five
	// times it, a critical one). Default 1.
	ErrorPercent float64 `yaml:"error_percent"`
}

// Listener is one client-facing listening socket.
type Listener struct {
	// Addr is host:port to listen on, e.g. ":8080" or "127.0.0.1:8443".
	Addr string `yaml:"addr"`
	// TLS, when set, makes this an HTTPS listener.
	TLS *TLS `yaml:"tls"`
	// HTTP2 enables HTTP/2 on a TLS listener. Default true.
	HTTP2 *bool `yaml:"http2"`
}

// TLS names a certificate and key in PEM files, relative to the config file.
// After Load both are absolute paths to files that could be read.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Admin is the admin listener.
type Admin struct {
	// Addr is where the admin listener (API, health endpoints) binds.
	// Default "" (off). An address that is not loopback requires
	// TokenFile.
	Addr string `yaml:"addr"`
	// TokenFile holds the bearer token required for state-changing calls
	// (and, on an address that is not loopback, for every call). Relative
	// to the config file; after Load an absolute path to a file that is not
	// empty. Default "": no call may change state.
	TokenFile string `yaml:"token_file"`
}

// Route sends matching requests to an upstream.
type Route struct {
	// Match selects requests.
	Match Match `yaml:"match"`
	// Upstream names the pool in Upstreams. Required.
	Upstream string `yaml:"upstream"`
	// StripPrefix removes Match.PathPrefix from the path before proxying.
	// Default false.
	StripPrefix bool `yaml:"strip_prefix"`
	// NonIdempotent, when set, overrides the upstream's retry.non_idempotent
	// for this route: POST and PATCH may be retried after they were sent.
	NonIdempotent *bool `yaml:"non_idempotent"`
	// ErrorPages replaces the gateway's error bodies for this route.
	ErrorPages ErrorPages `yaml:"error_pages"`
	// RateLimits are the route's rate limits; a request must be allowed by
	// every one. Default none.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Cache, when enabled, answers the route's GET and HEAD requests from
	// the shared cache (Config.Cache) as RFC 9111 allows. Default nil (off).
	Cache *RouteCache `yaml:"cache"`

	// Line is the line of the route in the file, for messages. Not a key.
	Line int `yaml:"-"`
}

// RouteCache configures the caching of one route's responses.
type RouteCache struct {
	// Enabled turns caching on for the route. Default false.
	Enabled bool `yaml:"enabled"`
	// UseStale lists the failures for which a stale response is served
	// instead of an error, as nginx's proxy_cache_use_stale: error,
	// timeout, http_500, http_502, http_503, http_504, updating. Default
	// none: only a response's own stale-if-error allows it.
	UseStale []string `yaml:"use_stale"`
	// LockTimeout is how long concurrent misses for one key wait for the
	// first one's response before going upstream themselves, as nginx's
	// proxy_cache_lock_timeout. Default 5s.
	LockTimeout time.Duration `yaml:"lock_timeout"`
}

// CacheStore is the shared, bounded store of cached responses.
type CacheStore struct {
	// MaxSize bounds the bytes of all stored responses. Default 256MiB.
	MaxSize int64 `yaml:"max_size"`
	// MaxObject bounds one stored response; larger ones are not stored.
	// Default 8MiB.
	MaxObject int64 `yaml:"max_object"`
}

// RateLimit is one rate limit of a route: at most Rate requests for each
// value of Key, in bursts of up to Burst.
type RateLimit struct {
	// Key is what requests are counted by: "client_ip" (the client's
	// address, from X-Forwarded-For only inside trusted_proxies), "route"
	// (every request of the route together) or "header:NAME" (the value of
	// a request header). Default client_ip.
	Key string `yaml:"key"`
	// Rate is written N/s, N/m or N/h, as "100/s". Required.
	Rate string `yaml:"rate"`
	// Burst is how many requests one key may make at once after a quiet
	// spell. Default 0: the rate's N.
	Burst int `yaml:"burst"`
}

// RateLimitStore keeps rate limit counters in Redis, shared by every
// holdfast instance that uses it.
type RateLimitStore struct {
	// URL is the Redis server, "redis://host:6379/0" (or rediss:// for
	// TLS). Required.
	URL string `yaml:"url"`
	// StoreTimeout bounds a check in Redis; a slower or failed one falls
	// back to the local limit. Default 50ms.
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// Instances is the number of holdfast instances sharing the limits:
	// while Redis is out of reach, each enforces the limit divided by it.
	// Default 1.
	Instances int `yaml:"instances"`
}

// Match selects requests by host and path prefix.
type Match struct {
	// Host is matched against the request's Host without port,
	// case-insensitively. "" matches every host; "*.example.com" matches
	// one or more labels before example.com. Load stores it in lower case.
	Host string `yaml:"host"`
	// PathPrefix is matched against the request path. Default "/".
	PathPrefix string `yaml:"path_prefix"`
}

// ErrorPages names template files for the gateway's own error bodies. Each is
// a Go text/template receiving the fields of the problem document. Paths are
// relative to the config file; after Load they are absolute, and the
// templates are known to parse.
type ErrorPages struct {
	HTML string `yaml:"html"` // default: built in
	JSON string `yaml:"json"` // default: built in (RFC 9457 problem+json)
}

// Upstream is a named pool of servers.
type Upstream struct {
	// Name is the pool's name: the key under upstreams. Not a key itself.
	Name string `yaml:"-"`
	// Balance is the balancing policy: round_robin (smooth weighted, nginx's),
	// least_conn, p2c (power of two random choices) or hash. Default
	// round_robin.
	Balance string `yaml:"balance"`
	// Hash is the key of the hash policy: "client_ip" (default),
	// "header:NAME" or "cookie:NAME".
	Hash string `yaml:"hash"`
	// Servers are the pool's members. At least one is required.
	Servers []Server `yaml:"servers"`
	// Timeouts bound each attempt.
	Timeouts Timeouts `yaml:"timeouts"`
	// Retry is the "next upstream" policy.
	Retry Retry `yaml:"retry"`
	// Passive configures passive health (ejection on failures).
	Passive Passive `yaml:"passive"`
	// Health configures active health checks and slow start.
	Health Health `yaml:"health"`
	// DNS configures the re-resolution of server host names.
	DNS DNS `yaml:"dns"`
	// Discover, when set, builds the pool's servers from DNS SRV records
	// instead of Servers, which must then be empty. Default nil (off).
	Discover *Discover `yaml:"discover"`
	// Breaker, when set, gives each server a circuit breaker. Default nil
	// (off).
	Breaker *Breaker `yaml:"breaker"`
	// Queue, when set, lets a request wait for a slot when every server is
	// at its max_conns (or the adaptive limit is reached). Default nil: such
	// a request is answered 503 at once.
	Queue *Queue `yaml:"queue"`
	// Adaptive, when enabled, limits the pool's requests in flight to a
	// limit found from measured latency. Default nil (off).
	Adaptive *Adaptive `yaml:"adaptive"`

	// Line is the line of the pool in the file, for messages. Not a key.
	Line int `yaml:"-"`
}

// Server is one member of a pool.
type Server struct {
	// URL is the server's base URL: scheme http or https, host and port.
	// A path is not allowed.
	URL string `yaml:"url"`
	// Weight is the server's share in weighted policies. Default 1.
	Weight int `yaml:"weight"`
	// MaxFails failures within FailTimeout eject the server. 0 disables
	// passive ejection for it. Default 1 (as nginx). The only server of a
	// pool without backups is never ejected (as nginx).
	MaxFails *int `yaml:"max_fails"`
	// FailTimeout is the window for counting failures and the first
	// ejection time. Default 10s (as nginx).
	FailTimeout time.Duration `yaml:"fail_timeout"`
	// Backup servers take traffic only when no primary is available.
	Backup bool `yaml:"backup"`
	// MaxConns caps the requests in flight to the server, as nginx's
	// max_conns. Default 0: no cap.
	MaxConns int `yaml:"max_conns"`

	// Line is the line of the server in the file, for messages. Not a key.
	Line int `yaml:"-"`
}

// Timeouts bound the phases of one attempt.
type Timeouts struct {
	// Connect bounds DNS resolution plus the TCP (and TLS) handshake.
	// Default 5s.
	Connect time.Duration `yaml:"connect"`
	// Send bounds writing the request (between two successful writes).
	// Default 60s.
	Send time.Duration `yaml:"send"`
	// Read bounds the wait for the response header after the request was
	// written, and then each wait between two body reads. Default 60s.
	Read time.Duration `yaml:"read"`
	// Idle is how long a pooled upstream connection may stay unused before
	// holdfast closes it. Default 4s: shorter than Node.js's 5s and most
	// servers' keep-alive timeouts, so that holdfast closes first. An
	// upstream's "Keep-Alive: timeout=N" shortens it for that server, and so
	// does an idle connection the upstream is seen closing.
	Idle time.Duration `yaml:"idle"`
}

// Retry is the "next upstream" policy of a pool, nginx's
// proxy_next_upstream made safe.
type Retry struct {
	// On lists the conditions that trigger another try: error, timeout,
	// http_502, http_503, http_504, http_429. Default
	// [error, timeout, http_502, http_503, http_504]. An empty list written
	// as "on: []" disables retries. After Load it is never nil.
	On []string `yaml:"on"`
	// Tries is the most attempts per request, the first included. Default 3.
	Tries int `yaml:"tries"`
	// Timeout bounds all tries of one request together, backoff included,
	// until a response header arrives. Default 30s, so that retries never
	// multiply a slow upstream's wait (three tries of a 60s read timeout
	// would be three minutes); 0: no total bound beyond each attempt's own
	// timeouts. A response that has started is never cut by it, nor is an
	// upgraded connection (WebSocket), nor a request whose body streams
	// (larger than BodyBuffer: never retried once sent). An upstream's
	// Retry-After is honoured only when it fits in what is left.
	Timeout time.Duration `yaml:"timeout"`
	// SameServerOnTimeout lets a request that timed out after it was sent
	// (no response header in time, or the send stalled) be tried again on
	// the same server. Default false: a timeout is evidence that the server
	// is struggling, and sending it the same request again adds to its
	// load; another server is still tried.
	SameServerOnTimeout bool `yaml:"same_server_on_timeout"`
	// BodyBuffer is the largest request body kept for replay. A larger body
	// is streamed and not retried once sent. Default 1MiB.
	BodyBuffer int64 `yaml:"body_buffer"`
	// NonIdempotent allows retrying POST and PATCH after they were sent.
	// Default false: they are retried only when provably never sent or when
	// they carry an Idempotency-Key.
	NonIdempotent bool `yaml:"non_idempotent"`
	// Backoff is the base of the jittered wait before a retry that goes
	// back to a server already tried; the wait is random in
	// [0, min(BackoffMax, Backoff*2^n)). A retry to a server not yet tried
	// goes at once. Default 10ms.
	Backoff time.Duration `yaml:"backoff"`
	// BackoffMax caps the wait before a retry. Default 250ms. With Timeout
	// 0, it is also the longest upstream Retry-After holdfast waits for; a
	// longer one ends the retries and the upstream's response goes to the
	// client.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Budget is the largest share of requests to this pool that may be
	// retries, in percent. Default 20.
	Budget float64 `yaml:"budget"`
	// BudgetMin is the retries per second always allowed whatever the
	// share, so that a quiet pool can still retry. Default 10.
	BudgetMin float64 `yaml:"budget_min"`
}

// Passive configures passive health: ejection on observed failures.
type Passive struct {
	// FailOn lists the outcomes that count as a server failure: error,
	// timeout, http_500, http_502, http_503, http_504, http_429. Default
	// [error, timeout, http_502, http_503, http_504]. A client's own errors
	// never count.
	FailOn []string `yaml:"fail_on"`
	// MaxEjectedPercent caps the share of a pool's primary servers ejected
	// at once for failures overload can explain (timeouts, resets, 5xx): a
	// server failing past it stays in rotation, so that holdfast tries it
	// rather than answering 503. Servers refusing connections or failing
	// DNS or TLS before any byte is sent are ejected whatever the share; one
	// server may always be ejected. Default 50.
	MaxEjectedPercent float64 `yaml:"max_ejected_percent"`
	// MaxEjectionTime caps the ejection time, which doubles with each
	// consecutive ejection of the same server. Default 300s.
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
}

// Health configures active health checks. Active checking runs only when
// Path is set; SlowStart applies with or without it.
type Health struct {
	// Path is the path checked on each server; "" turns checks off.
	// Default "".
	Path string `yaml:"path"`
	// Interval is the time between two checks of one server (each wait is
	// shortened by up to a tenth at random, so that servers sharing an
	// interval are not checked in step). Default 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one check: connect, request and response body. A
	// timeout longer than Interval is cut to Interval. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Method is the check's request method. Default GET.
	Method string `yaml:"method"`
	// Status is the range of statuses that pass, like "200-399" or "200".
	// Default "200-399".
	Status string `yaml:"status"`
	// Body is a regular expression the response body (its first 64KiB)
	// must match. Default "": any body.
	Body string `yaml:"body"`
	// Rise is the consecutive passes that bring a down server up. Default 2.
	Rise int `yaml:"rise"`
	// Fall is the consecutive failures that take a server down. Default 3.
	Fall int `yaml:"fall"`
	// Host is the Host header of a check. Default "": the server's host
	// and port as written in its URL.
	Host string `yaml:"host"`
	// Headers are extra request header fields sent with each check.
	// Default none.
	Headers map[string]string `yaml:"headers"`
	// SlowStart is the time over which a server that comes back (after
	// being down or ejected, or when a reload or discovery adds it) ramps
	// from a tenth of its weight to all of it, in every balancing policy.
	// Default 0: full weight at once.
	SlowStart time.Duration `yaml:"slow_start"`
	// Mandatory makes a server that is new (at start, or added by a reload
	// or discovery) wait for one passing check before it takes requests.
	// Default false: a new server is taken as up until its first check.
	Mandatory bool `yaml:"mandatory"`
}

// DNS configures how server host names are resolved.
type DNS struct {
	// Refresh is how often each server's host name is resolved again; every
	// address in the answer takes traffic. A failed or empty answer keeps
	// the last good addresses. Default 30s; 0 resolves at each new
	// connection instead.
	Refresh time.Duration `yaml:"refresh"`
}

// Discover builds a pool's servers from DNS SRV records, as Consul,
// Kubernetes headless services and CoreDNS publish them: each record's
// target and port is a server, its weight the server's weight (scaled to
// at most 100), and records of the lowest priority are primaries, the rest
// backups.
type Discover struct {
	// SRV is the name to look up, like "_http._tcp.api.service.consul".
	// Required.
	SRV string `yaml:"srv"`
	// Refresh is how often the records are looked up again. A failed or
	// empty answer keeps the last good servers. Default 10s.
	Refresh time.Duration `yaml:"refresh"`
	// Scheme is the scheme of the servers built: http or https. Default
	// http.
	Scheme string `yaml:"scheme"`
	// Server holds the per-server settings a static list would set.
	Server ServerTemplate `yaml:"server"`
}

// ServerTemplate holds the settings of servers built by discovery.
type ServerTemplate struct {
	// MaxFails is as a server's max_fails. Default 1.
	MaxFails *int `yaml:"max_fails"`
	// FailTimeout is as a server's fail_timeout. Default 10s.
	FailTimeout time.Duration `yaml:"fail_timeout"`
	// MaxConns is as a server's max_conns. Default 0: no cap.
	MaxConns int `yaml:"max_conns"`
}

// Breaker configures the circuit breaker of each server of a pool.
type Breaker struct {
	// ErrorRatio opens the breaker when the failures (the outcomes of
	// passive.fail_on) exceed this share of the requests over Window, a
	// fraction from 0 to 1. Default 0.5.
	ErrorRatio float64 `yaml:"error_ratio"`
	// MinRequests is the fewest requests in Window before the ratio is
	// judged. Default 20.
	MinRequests int `yaml:"min_requests"`
	// Window is the rolling window of counts. Default 10s.
	Window time.Duration `yaml:"window"`
	// OpenFor is how long an open breaker keeps requests from the server
	// before it lets trials through; it doubles each time the trials fail,
	// up to MaxOpenFor. Default 5s.
	OpenFor time.Duration `yaml:"open_for"`
	// MaxOpenFor caps OpenFor's growth. Default 60s.
	MaxOpenFor time.Duration `yaml:"max_open_for"`
	// HalfOpenRequests is the trial requests let through at a time once
	// open_for is over; the breaker closes when they all pass, and opens
	// again at the first that fails. Default 3.
	HalfOpenRequests int `yaml:"half_open_requests"`
}

// Queue configures the wait for a slot when a pool is at its concurrency
// limit.
type Queue struct {
	// Size is the most requests waiting at once; beyond it, 503. Default
	// 100.
	Size int `yaml:"size"`
	// Timeout is the longest wait; past it, 503. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
}

// Adaptive configures the adaptive concurrency limit of a pool.
type Adaptive struct {
	// Enabled turns the limit on. Default false.
	Enabled bool `yaml:"enabled"`
	// MinLimit is the lowest the limit goes. Default 5.
	MinLimit int `yaml:"min_limit"`
	// MaxLimit is the highest the limit goes. Default 1000.
	MaxLimit int `yaml:"max_limit"`
}

// ClientLimits bound what a client may send and how slowly.
type ClientLimits struct {
	// MaxHeaderBytes caps the request header section. Default 64KiB; over
	// it the answer is 431.
	MaxHeaderBytes int64 `yaml:"max_header_bytes"`
	// MaxBodyBytes caps a request body. Default 0: no limit; over it the
	// answer is 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading a request header. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle client keep-alive connections. Default 75s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderCount caps the number of request header fields (each value
	// of a repeated field counts). Default 100, as Apache's
	// LimitRequestFields; over it the answer is 431.
	MaxHeaderCount int `yaml:"max_header_count"`
	// BodyTimeout is the longest wait for the next bytes of a request body
	// (nginx's client_body_timeout). Default 60s. When it runs out, an
	// upstream request the body was streaming to is aborted and its
	// connection closed, and the answer is 408, or the response is cut if
	// it had started. The upstream is never blamed.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// SendTimeout is the longest one write of a response to the client
	// (up to 32KiB) may wait (nginx's send_timeout); waits on the upstream
	// do not count. Default 60s. When it runs out both connections are
	// closed; the upstream is never blamed. Upgraded connections
	// (WebSocket) are not bound by it.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// MaxConnections caps the client connections open at once, across all
	// listeners. Default 10000. Beyond it a new connection is accepted and
	// closed at once, and that is logged and counted.
	MaxConnections int `yaml:"max_connections"`
}

// AccessLog configures the access log.
type AccessLog struct {
	// Path is "stdout" (default), "stderr", "off" or a file path (appended),
	// relative to the config file; after Load a file path is absolute.
	Path string `yaml:"path"`
	// Buffer, when more than 0, collects lines in memory and writes them
	// together once this many bytes are waiting, or Flush after the first
	// of them, as nginx's "access_log ... buffer=" does: one write for
	// many requests instead of one each. A crash loses what waits. Default
	// 0: each line is written as its request ends. At most 16MiB.
	Buffer int64 `yaml:"buffer"`
	// Flush bounds how long a line waits in the buffer. Default 1s.
	Flush time.Duration `yaml:"flush"`
}

// Shutdown configures graceful shutdown on SIGTERM.
type Shutdown struct {
	// DrainTimeout bounds the wait for in-flight requests. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}
