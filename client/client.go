package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/limits"
)

// The defaults, each justified in the package documentation.
const (
	DefaultMaxAttempts     = 4
	DefaultBaseDelay       = 100 * time.Millisecond
	DefaultMaxDelay        = 10 * time.Second
	DefaultMaxRetryAfter   = 60 * time.Second
	DefaultBodyBufferLimit = 1 << 20

	// drainLimit bounds how much of a discarded response body is read so
	// that its connection can be reused. Error pages are small; reading
	// further costs more than opening a new connection. The gateway keeps
	// as much of the responses it discards.
	drainLimit = limits.DiscardedBodyBytes
)

// Transport is a resilient [http.RoundTripper]: it retries failed attempts
// with backoff, honours Retry-After, replays request bodies, keeps a retry
// budget and a circuit breaker per host, and fails over to fallback base
// URLs. Each field documents what its zero value means; the zero Transport
// is ready to use.
//
// A Transport is safe for concurrent use by multiple goroutines. Its fields
// must not be changed after its first use, as with [http.Transport]. Its
// per-host state (budget and breaker, one entry per scheme and host it has
// sent to) lives as long as the Transport: share one Transport for all
// requests to a host, as with [http.Transport].
type Transport struct {
	// Base sends each attempt. If nil, a clone of http.DefaultTransport
	// (keep-alive, proxy from the environment, HTTP/2) is made on first use,
	// with the upstream limits of holdfast's gateway and probe: connect
	// (and TLS handshake) within 5s, a response header within 60s of the
	// request, idle connections closed after 4s, response headers up to
	// MaxResponseHeaderBytes.
	Base http.RoundTripper

	// MaxResponseHeaderBytes bounds the response header section read by
	// the default base transport; a larger one fails the attempt with the
	// cause http_response_header_section_size, as at the gateway and the
	// probe. If zero or negative, DefaultMaxResponseHeaderBytes (64 KiB).
	// A Base set by the caller keeps its own limit (for an http.Transport,
	// its MaxResponseHeaderBytes field).
	MaxResponseHeaderBytes int64

	// Timeout bounds each request as a whole: every attempt, every wait and
	// the reading of the response body. If zero, only the request's context
	// bounds it. Prefer it (or a context deadline) to http.Client.Timeout,
	// which replaces the *Error of a timed-out request with net/http's own
	// error, which errors.As cannot see through.
	Timeout time.Duration

	// AttemptTimeout bounds each attempt until its response header arrives,
	// so that one hung attempt does not use up the whole deadline and leave
	// no time to retry (Envoy's per-try timeout). A GET that times out is
	// retried; a POST without an Idempotency-Key is not, as the server may
	// be working on it. The response body is bounded only by Timeout and
	// the context. If zero, attempts are bounded only by those and by the
	// default base transport's 60s wait for a response header.
	AttemptTimeout time.Duration

	// MaxAttempts bounds the attempts per request, the first included;
	// 1 turns retries off. If zero or negative, DefaultMaxAttempts (4).
	MaxAttempts int

	// BaseDelay and MaxDelay shape the backoff: before retry n the wait is
	// drawn uniformly from [0, min(MaxDelay, BaseDelay*2^(n-1))] ("full
	// jitter"). If zero, DefaultBaseDelay (100ms) and DefaultMaxDelay (10s).
	BaseDelay time.Duration
	MaxDelay  time.Duration

	// MaxRetryAfter caps the wait a Retry-After header can ask for; a longer
	// one is treated as this long. Retry-After is a minimum: the wait is the
	// longer of it and the backoff. If zero, DefaultMaxRetryAfter (60s).
	MaxRetryAfter time.Duration

	// Retry429 adds 429 Too Many Requests to the statuses retried (502, 503
	// and 504 always are). If false, a 429 is returned to the caller.
	Retry429 bool

	// BodyBufferLimit is how many bytes of a request body without GetBody
	// are buffered for replay. A larger body is streamed: it is sent once,
	// and not retried once an attempt has read from it (the stop reason is
	// StopBodyTooLarge); before that, a fallback can still take it. If zero,
	// DefaultBodyBufferLimit (1 MiB); if negative, nothing is buffered and
	// only requests with GetBody (or no body) are replayed.
	BodyBufferLimit int64

	// IdempotencyKeys adds an Idempotency-Key header, a random UUID kept
	// across all attempts of one request, to POST and PATCH requests that
	// carry neither Idempotency-Key nor X-Idempotency-Key, which makes them
	// retryable. Turn it on only for servers that deduplicate on the key:
	// for any other server a retried POST may act twice. If false, no
	// header is added.
	IdempotencyKeys bool

	// Fallbacks are base URLs ("https://backup.example.com:8443"), tried in
	// order after the request's own URL when its host's circuit is open or
	// an attempt failed before reaching it (DNS, connect or TLS failure).
	// The scheme and host are replaced and the path and query kept; the
	// Host header follows. A fallback must have no path, query or fragment.
	// If nil, requests go only to their own URL.
	Fallbacks []string

	// Budget limits retries per host; see BudgetConfig.
	Budget BudgetConfig

	// Breaker is the circuit breaker per host; see BreakerConfig.
	Breaker BreakerConfig

	// OnAttempt, if not nil, is called after every attempt, before any wait,
	// from the goroutine that called RoundTrip; it may be called
	// concurrently for concurrent requests and must not block.
	OnAttempt func(AttemptInfo)

	// Hedge sends a second attempt beside one that is slow to answer, for
	// requests safe to send twice; see HedgeConfig. Off by default.
	Hedge HedgeConfig

	// AdaptiveThrottle refuses locally a share of the requests to a host
	// that rejects most of what it receives; see ThrottleConfig. Off by
	// default.
	AdaptiveThrottle ThrottleConfig

	// OnStateChange, if not nil, is called on every transition of a host's
	// circuit breaker (closed to open, open to half-open, half-open to
	// closed or open), with the host as BreakerState takes it
	// ("https://api.example.com"), to export the state as a metric or log
	// it. For one host, calls come one at a time and in the order of the
	// transitions, from the goroutine of a request to that host, with no
	// lock held; it must not block.
	OnStateChange func(host string, from, to BreakerState)

	// Injected for tests; nil means the real clock, timers and randomness.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	randN func(n int64) int64

	once sync.Once
	base http.RoundTripper
	// reuseTrackers says the base is an *http.Transport, whose attempts
	// take their trackers from cause.AcquireTracker.
	reuseTrackers bool
	fallbacks     []*url.URL
	initErr       error
	mu            sync.Mutex
	hosts         map[hostID]*host
}

// Interface guard.
var _ http.RoundTripper = (*Transport)(nil)

// Option sets fields of the Transport that New builds. The With functions
// cover the common ones; any func(*Transport) sets the rest.
type Option func(*Transport)

// New returns an [http.Client] whose Transport is a *[Transport] configured
// by opts. It sets no http.Client.Timeout, which would hide the *Error of a
// timed-out request: bound requests with WithTimeout or a context deadline,
// and retries and waits stay within it.
func New(opts ...Option) *http.Client {
	t := &Transport{}
	for _, o := range opts {
		o(t)
	}
	return &http.Client{Transport: t}
}

// WithBase sets Transport.Base, the transport each attempt is sent with.
func WithBase(rt http.RoundTripper) Option { return func(t *Transport) { t.Base = rt } }

// WithTimeout sets Transport.Timeout, the bound on a whole request.
func WithTimeout(d time.Duration) Option { return func(t *Transport) { t.Timeout = d } }

// WithAttemptTimeout sets Transport.AttemptTimeout, the bound on each
// attempt until its response header arrives.
func WithAttemptTimeout(d time.Duration) Option { return func(t *Transport) { t.AttemptTimeout = d } }

// WithMaxAttempts sets Transport.MaxAttempts, the first attempt included.
func WithMaxAttempts(n int) Option { return func(t *Transport) { t.MaxAttempts = n } }

// WithBackoff sets Transport.BaseDelay and Transport.MaxDelay.
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(t *Transport) { t.BaseDelay, t.MaxDelay = base, maxDelay }
}

// WithMaxRetryAfter sets Transport.MaxRetryAfter.
func WithMaxRetryAfter(d time.Duration) Option { return func(t *Transport) { t.MaxRetryAfter = d } }

// WithRetry429 sets Transport.Retry429: 429 responses are retried too.
func WithRetry429() Option { return func(t *Transport) { t.Retry429 = true } }

// WithBodyBufferLimit sets Transport.BodyBufferLimit.
func WithBodyBufferLimit(n int64) Option { return func(t *Transport) { t.BodyBufferLimit = n } }

// WithIdempotencyKeys sets Transport.IdempotencyKeys: POST and PATCH
// requests get an Idempotency-Key and become retryable.
func WithIdempotencyKeys() Option { return func(t *Transport) { t.IdempotencyKeys = true } }

// WithFallbacks sets Transport.Fallbacks, base URLs tried in order.
func WithFallbacks(baseURLs ...string) Option {
	return func(t *Transport) { t.Fallbacks = baseURLs }
}

// WithBudget sets Transport.Budget.
func WithBudget(c BudgetConfig) Option { return func(t *Transport) { t.Budget = c } }

// WithBreaker sets Transport.Breaker.
func WithBreaker(c BreakerConfig) Option { return func(t *Transport) { t.Breaker = c } }

// WithOnAttempt sets Transport.OnAttempt.
func WithOnAttempt(f func(AttemptInfo)) Option { return func(t *Transport) { t.OnAttempt = f } }

// WithHedging sets Transport.Hedge: a request safe to send twice that has
// had no response header for delay gets another attempt beside it, up to
// maxInFlight attempts at once, and the first response wins (see
// HedgeConfig).
func WithHedging(delay time.Duration, maxInFlight int) Option {
	return func(t *Transport) { t.Hedge = HedgeConfig{Delay: delay, MaxInFlight: maxInFlight} }
}

// WithAdaptiveThrottling sets Transport.AdaptiveThrottle.K: requests to a
// host that rejects most of what it receives are refused locally, in
// proportion (see ThrottleConfig). k = 2 suits most services.
func WithAdaptiveThrottling(k float64) Option {
	return func(t *Transport) { t.AdaptiveThrottle.K = k }
}

// WithOnStateChange sets Transport.OnStateChange, called on every
// transition of a host's circuit breaker.
func WithOnStateChange(f func(host string, from, to BreakerState)) Option {
	return func(t *Transport) { t.OnStateChange = f }
}

func (t *Transport) maxAttempts() int {
	if t.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return t.MaxAttempts
}

func (t *Transport) baseDelay() time.Duration {
	if t.BaseDelay <= 0 {
		return DefaultBaseDelay
	}
	return t.BaseDelay
}

func (t *Transport) maxDelay() time.Duration {
	if t.MaxDelay <= 0 {
		return DefaultMaxDelay
	}
	return t.MaxDelay
}

func (t *Transport) maxRetryAfter() time.Duration {
	if t.MaxRetryAfter <= 0 {
		return DefaultMaxRetryAfter
	}
	return t.MaxRetryAfter
}

func (t *Transport) bodyBufferLimit() int64 {
	if t.BodyBufferLimit == 0 {
		return DefaultBodyBufferLimit
	}
	return t.BodyBufferLimit
}

func (t *Transport) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

func (t *Transport) wait(ctx context.Context, d time.Duration) error {
	if t.sleep != nil {
		return t.sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (t *Transport) random(n int64) int64 {
	if t.randN != nil {
		return t.randN(n)
	}
	return rand.Int64N(n)
}

func (t *Transport) init() {
	t.once.Do(func() {
		t.base = t.Base
		if t.base == nil {
			t.base = t.defaultBase()
		}
		// Trackers are reused only over net/http's own Transport, whose
		// calls of the trace hooks cause.AcquireTracker's rule is made for.
		if ht, ok := t.base.(*http.Transport); ok {
			t.reuseTrackers = ht.Protocols == nil || !ht.Protocols.UnencryptedHTTP2()
		}
		t.hosts = make(map[hostID]*host)
		for _, s := range t.Fallbacks {
			u, err := url.Parse(s)
			if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "" ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "") {
				err = fmt.Errorf("want scheme://host[:port] with no path or query")
			}
			if err != nil {
				t.initErr = fmt.Errorf("client: fallback %q: %w", s, err)
				return
			}
			t.fallbacks = append(t.fallbacks, u)
		}
	})
}

// host returns the budget and breaker for the host of u, used at now.
func (t *Transport) host(u *url.URL, now time.Time) *host {
	id := hostIDOf(u)
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[id]
	if h == nil {
		if len(t.hosts) >= maxHosts {
			t.pruneHosts(now)
		}
		h = newHost(t, id.String())
		t.hosts[id] = h
	}
	h.lastUsed = now
	return h
}

// hostID is how hosts are told apart: scheme and host lowercased, port as
// written. Its String is the host's name in OnStateChange,
// "https://api.example.com:8443".
type hostID struct{ scheme, host string }

// hostIDOf returns the hostID of u; it allocates only when u's scheme or
// host has upper-case letters.
func hostIDOf(u *url.URL) hostID {
	return hostID{strings.ToLower(u.Scheme), strings.ToLower(u.Host)}
}

func (id hostID) String() string { return id.scheme + "://" + id.host }

// BreakerState returns the state of the circuit breaker of host, a base
// URL such as "https://api.example.com" or "http://10.0.0.7:8080" (a
// path, if any, is ignored), as OnStateChange names it. A host the
// Transport has not sent to, or has forgotten after a long idle spell with
// its circuit closed, is BreakerClosed, as is every host when the breaker
// is disabled. It is safe to call concurrently, OnStateChange included.
func (t *Transport) BreakerState(host string) BreakerState {
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return BreakerClosed // not a base URL: no host of the Transport's
	}
	t.mu.Lock()
	h := t.hosts[hostIDOf(u)]
	t.mu.Unlock()
	if h == nil {
		return BreakerClosed
	}
	return h.breaker.current()
}

// maxHosts is the number of hosts whose state the Transport keeps before it
// forgets those unused for hostIdle; hostIdle is long enough that a
// budget's or breaker's window has long passed.
const (
	maxHosts = 1024
	hostIdle = 10 * time.Minute
)

// pruneHosts forgets hosts unused for hostIdle whose circuit is closed, so
// that a client talking to many hosts does not grow without bound. An open
// circuit is never forgotten early. Called with t.mu held.
func (t *Transport) pruneHosts(now time.Time) {
	for k, h := range t.hosts {
		if now.Sub(h.lastUsed) > hostIdle && h.breaker.closedNow() {
			delete(t.hosts, k)
		}
	}
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method. [http.Client.CloseIdleConnections] calls it.
func (t *Transport) CloseIdleConnections() {
	t.init()
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
