package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// StoreOptions configure the shared store: the configuration's
// rate_limit_store.
type StoreOptions struct {
	// URL is Redis's address: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. A single Redis (or a primary behind a fixed
	// address); Cluster is not supported, since a route's keys are read
	// and written by one script.
	URL string
	// Timeout bounds one exchange with Redis, connecting included. Slower
	// than that, the request is decided locally and the Limiter falls back
	// to local limits until Redis answers a probe. Zero means 50ms.
	Timeout time.Duration
	// Instances is how many gateways share the store: while it is
	// unreachable, each gateway allows its share of a limit, rate and burst
	// divided by Instances. Zero means 1.
	Instances int
	// ProbeInterval is how often an unreachable Redis is probed, by the
	// Limiter's goroutine alone: requests never wait for a dead Redis.
	// Zero means 1s.
	ProbeInterval time.Duration
	// KeyPrefix starts every key in Redis, so that several deployments can
	// share one Redis. Zero means "holdfast:rl:". A key reads
	// <prefix><route>:<limit index>:<key value>.
	KeyPrefix string
}

// Mode says who decides: local buckets or the shared store.
type Mode int32

// The modes.
const (
	// ModeLocal: no shared store; each gateway limits on its own.
	ModeLocal Mode = iota
	// ModeShared: Redis holds the counters, shared by all gateways.
	ModeShared
	// ModeFallback: Redis is unreachable; each gateway limits locally to
	// its share until a probe finds Redis again.
	ModeFallback
)

// String returns "local", "shared" or "local-fallback".
func (m Mode) String() string {
	switch m {
	case ModeLocal:
		return "local"
	case ModeShared:
		return "shared"
	case ModeFallback:
		return "local-fallback"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText writes m as String does, for the admin API's JSON.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// The causes of a failed exchange with Redis, in logs and Status.
const (
	CauseConnectionRefused = "connection_refused"
	CauseTimeout           = "timeout"
	CauseOther             = "other"
)

// Status is the mode of a Limiter's limits, for the admin API.
type Status struct {
	Mode Mode `json:"mode"`
	// Since is when the current mode began: the Limiter's creation, or the
	// last fall back or recovery. Zero in ModeLocal.
	Since time.Time `json:"since,omitzero"`
	// Cause is the cause of the last failed exchange with Redis
	// (CauseConnectionRefused, CauseTimeout or CauseOther), LastError its
	// text and LastErrorAt its time; empty if none failed.
	Cause       string    `json:"cause,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Store is Redis's address, host:port/db, without credentials.
	Store string `json:"store,omitempty"`
	// Instances is StoreOptions.Instances, resolved.
	Instances int `json:"instances,omitempty"`
}

// store is the shared store: a Redis client, the script, and the mode.
type store struct {
	client     *redis.Client
	script     *redis.Script
	addr       string // host:port/db, for logs and Status
	network    string // tcp or unix, and the address to dial, for probes
	dialAddr   string
	dialer     net.Dialer
	timeout    time.Duration
	instances  int
	keyPrefix  string
	probeEvery time.Duration
	log        *slog.Logger

	mode atomic.Int32 // a Mode, read on every request without a lock

	mu          sync.Mutex // guards the changes of mode and the fields below
	since       time.Time
	cause       string
	lastErr     string
	lastErrAt   time.Time
	closed      bool
	stopProbing context.CancelFunc
	probing     sync.WaitGroup
}

func newStore(o StoreOptions, log *slog.Logger) (*store, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("rate limit store url: %w", err)
	}
	s := &store{
		addr:       opt.Addr + "/" + strconv.Itoa(opt.DB),
		timeout:    o.Timeout,
		instances:  o.Instances,
		keyPrefix:  o.KeyPrefix,
		probeEvery: o.ProbeInterval,
		log:        log,
		script:     redis.NewScript(gcraScript),
		since:      time.Now(),
	}
	if s.timeout <= 0 {
		s.timeout = 50 * time.Millisecond
	}
	if s.instances <= 0 {
		s.instances = 1
	}
	if s.keyPrefix == "" {
		s.keyPrefix = "holdfast:rl:"
	}
	if s.probeEvery <= 0 {
		s.probeEvery = time.Second
	}
	// One try per exchange, bounded by Timeout: a retry would only make
	// the request wait longer for an answer the local buckets can give.
	opt.DialTimeout = s.timeout
	opt.ReadTimeout = s.timeout
	opt.WriteTimeout = s.timeout
	opt.PoolTimeout = s.timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	// RESP2 and no CLIENT SETINFO nor maintenance notifications: a new
	// connection costs one round trip (or two with a password), which
	// matters when one is dialled within a request's Timeout.
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	s.client = redis.NewClient(opt)
	s.network, s.dialAddr = opt.Network, opt.Addr
	if s.network == "" {
		s.network = "tcp"
	}
	s.mode.Store(int32(ModeShared))

	ctx, cancel := context.WithCancel(context.Background())
	s.stopProbing = cancel
	s.probing.Go(func() { s.probeLoop(ctx) })
	return s, nil
}

func (s *store) shared() bool { return Mode(s.mode.Load()) == ModeShared }

func (s *store) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{
		Mode:        Mode(s.mode.Load()),
		Since:       s.since,
		Cause:       s.cause,
		LastError:   s.lastErr,
		LastErrorAt: s.lastErrAt,
		Store:       s.addr,
		Instances:   s.instances,
	}
}

// fail records a failed exchange and, if the limits were shared, falls back
// to local ones: the first of the concurrent failures logs it.
func (s *store) fail(err error) {
	now := time.Now()
	cause := classify(err)
	s.mu.Lock()
	if s.closed || Mode(s.mode.Load()) != ModeShared {
		s.mu.Unlock()
		return
	}
	s.mode.Store(int32(ModeFallback))
	s.since, s.cause, s.lastErr, s.lastErrAt = now, cause, err.Error(), now
	s.mu.Unlock()
	s.log.Warn("rate limit store unreachable: limiting locally, each gateway to its share",
		"store", s.addr, "cause", cause, "error", err.Error(), "instances", s.instances)
}

// probeLoop probes Redis every probeEvery while the limits are local, and
// shares them again when it answers.
func (s *store) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.shared() {
			s.probe(ctx)
		}
	}
}

// probe first opens a bare connection to Redis's port, so that while Redis
// is down the client's pool does not dial (and log) every second; then runs
// the script on a key of its own, as a request would: a Redis that answers
// but cannot run it or write (a read-only replica, a wrong password) stays
// down rather than flapping. The key lives a millisecond; the run loads the
// script into a Redis that restarted, so that the first request after the
// recovery needs one round trip.
func (s *store) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	c, err := s.dialer.DialContext(pctx, s.network, s.dialAddr)
	if err == nil {
		c.Close()
		err = s.script.Run(pctx, s.client, []string{s.keyPrefix + "probe"}, "1", "1").Err()
	}
	cancel()
	now := time.Now()
	s.mu.Lock()
	if s.closed || ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.cause, s.lastErr, s.lastErrAt = classify(err), err.Error(), now
		s.mu.Unlock()
		return
	}
	down := now.Sub(s.since)
	s.mode.Store(int32(ModeShared))
	s.since = now
	s.mu.Unlock()
	s.log.Info("rate limit store reachable again: limits shared",
		"store", s.addr, "local_for", down.Round(time.Millisecond).String())
}

func (s *store) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Routes still in use decide locally from now on, quietly.
	s.mode.Store(int32(ModeFallback))
	s.since = time.Now()
	s.mu.Unlock()
	s.stopProbing()
	s.probing.Wait()
	return s.client.Close()
}

// classify names the cause of a failed exchange with Redis.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseConnectionRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return CauseTimeout
	}
	return CauseOther
}

// scriptArgs are the script's arguments for lim: its emission interval (the
// time one request costs) and its burst tolerance, in microseconds.
func (s *store) scriptArgs(lim Limit) []any {
	interval := float64(lim.Rate.Per/time.Microsecond) / float64(lim.Rate.N)
	tolerance := interval * float64(lim.burst())
	return []any{
		strconv.FormatFloat(interval, 'f', -1, 64),
		strconv.FormatFloat(tolerance, 'f', -1, 64),
	}
}

// routeKey is a route's name as it appears in Redis keys: escaped, so that a
// ':' in it cannot make two routes' keys meet, and bounded.
func routeKey(name string) string {
	return boundKey(url.QueryEscape(name))
}

// maxKeyValue bounds the key values kept, locally and in Redis: a longer
// one (a header can be kilobytes long) is replaced by a digest.
const maxKeyValue = 64

// boundKey returns v, or "sha256:" and the hex of the first 16 bytes of its
// SHA-256 if it is longer than maxKeyValue bytes.
func boundKey(v string) string {
	if len(v) <= maxKeyValue {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// allowShared asks Redis, in one round trip, whether every limit of r allows
// the request, and takes a token from each only if they all do.
func (r *Route) allowShared(ctx context.Context, clientIP string, h http.Header) (Decision, error) {
	keys := make([]string, len(r.limits))
	for i := range r.limits {
		keys[i] = r.limits[i].prefix + r.limits[i].value(clientIP, h)
	}
	ctx, cancel := context.WithTimeout(ctx, r.store.timeout)
	defer cancel()
	res, err := r.store.script.Run(ctx, r.store.client, keys, r.args...).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 2+3*len(r.limits) || res[1] < 0 || res[1] > int64(len(r.limits)) {
		return Decision{}, fmt.Errorf("rate limit script answered %v for %d limits", res, len(r.limits))
	}
	d := Decision{Allowed: res[0] == 1, Mode: ModeShared, route: r, Remaining: math.MaxInt}
	for i := range r.limits {
		rem, retry, reset := res[3*i+2], res[3*i+3], res[3*i+4]
		if (!d.Allowed && int64(i) == res[1]-1) || (d.Allowed && int(rem) < d.Remaining) {
			d.Limit, d.Policy, d.Remaining = i, r.limits[i].policy, int(rem)
			d.RetryAfter = time.Duration(retry) * time.Microsecond
			d.Reset = time.Duration(reset) * time.Microsecond
		}
	}
	if !d.Allowed && res[1] == 0 {
		return Decision{}, fmt.Errorf("rate limit script refused without naming a limit: %v", res)
	}
	return d, nil
}

// gcraScript decides a request against all the limits of its route at once,
// with GCRA (the generic cell rate algorithm, a token bucket kept as one
// timestamp per key): the theoretical arrival time (TAT) of the next
// request, in microseconds of Redis's clock. A request is allowed if it
// would not move the TAT more than the burst tolerance past now; it costs
// one emission interval. Tokens are taken only when every limit allows, so
// a refused request costs nothing, and a key expires once its bucket is
// full again.
//
// It is written here rather than taken from github.com/go-redis/redis_rate,
// whose script holds one key: a route with several limits would then need
// one round trip per limit, and take tokens from the first limits for a
// request that a later one refuses.
//
// KEYS[i]: limit i's key. ARGV[2i-1], ARGV[2i]: its emission interval and
// burst tolerance, in microseconds. The answer: allowed (1 or 0), the
// (1-based) index of the limit that refuses longest (0 if none), then for
// each limit its remaining requests, the microseconds until it allows (0 if
// it does) and until its bucket is full.
const gcraScript = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {1, 0}
local tats = {}
local longest = -1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call("GET", KEYS[i]) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allow_at = next_tat - tolerance
  if now < allow_at then
    local wait = allow_at - now
    out[1] = 0
    if wait > longest then longest = wait; out[2] = i end
    out[3 * i] = 0
    out[3 * i + 1] = math.ceil(wait)
    out[3 * i + 2] = math.ceil(tat - now)
  else
    tats[i] = next_tat
    out[3 * i] = math.floor((now - allow_at) / interval)
    out[3 * i + 1] = 0
    out[3 * i + 2] = math.ceil(next_tat - now)
  end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    local ttl = math.max(1, math.ceil((tats[i] - now) / 1000))
    redis.call("SET", KEYS[i], string.format("%d", math.ceil(tats[i])), "PX", ttl)
  end
end
return out
`
