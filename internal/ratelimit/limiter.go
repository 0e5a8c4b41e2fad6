package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Limiter. The zero value limits locally, with
// DefaultMaxKeys keys per limit.
type Options struct {
	// Store, if non-nil, shares the limits between the gateways that use
	// the same Redis: each limit is then a total over all of them. If nil,
	// every gateway limits on its own.
	Store *StoreOptions
	// MaxKeys is how many key values (client addresses, header values)
	// each limit tracks locally before it forgets the least recently used.
	// Zero means DefaultMaxKeys.
	MaxKeys int
	// Logger receives the store's changes of mode. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock of the local buckets. If nil, time.Now. The shared
	// store uses Redis's clock, the one clock all gateways agree on.
	Now func() time.Time
}

func (o *Options) maxKeys() int {
	if o.MaxKeys <= 0 {
		return DefaultMaxKeys
	}
	return o.MaxKeys
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Limiter holds what the routes' limits share: the connection to the shared
// store, if any, and its mode. A gateway makes one, builds a Route for each
// route that has limits, and closes it at shutdown. Its methods are safe for
// concurrent use.
type Limiter struct {
	opts  Options
	now   func() time.Time
	store *store // nil when limits are local only
}

// New returns a Limiter. With a Store it starts one goroutine, which probes
// Redis while it is unreachable, and Close stops it. New does not wait for
// Redis: the first request finds out whether it answers.
func New(opts Options) (*Limiter, error) {
	l := &Limiter{opts: opts, now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if opts.Store != nil {
		s, err := newStore(*opts.Store, opts.logger())
		if err != nil {
			return nil, err
		}
		l.store = s
	}
	return l, nil
}

// Close stops the store's goroutine and closes its connections. Routes
// built by l keep answering, locally. Close is idempotent.
func (l *Limiter) Close() error {
	if l.store == nil {
		return nil
	}
	return l.store.close()
}

// Status reports the mode of l's limits, for the admin API.
func (l *Limiter) Status() Status {
	if l.store == nil {
		return Status{Mode: ModeLocal}
	}
	return l.store.status()
}

// Route is the limits of one route. Build it with Limiter.Route; its methods
// are safe for concurrent use.
type Route struct {
	name        string
	limits      []routeLimit
	policyValue string
	store       *store
	now         func() time.Time
	args        []any // the script's arguments, the same for every request
}

type routeLimit struct {
	Limit
	policy Policy
	local  *buckets      // per key value; nil for KeyRoute
	single *rate.Limiter // KeyRoute's only bucket
	prefix string        // the Redis key up to the key value
	limit  rate.Limit    // the local buckets' rate and burst
	burst  int
}

// Route returns the limits of the route called name, which must be unique
// among the routes that share a store (the configuration's route name or
// index will do): it makes their Redis keys. All the limits must allow a
// request. A route without limits allows everything.
//
// When l has a store, the local buckets, which decide only while Redis is
// unreachable, allow each gateway its share: rate and burst divided by
// StoreOptions.Instances (a burst of at least 1). Without one they allow
// the whole limit. Each Route has buckets of its own: one built again for a
// new configuration starts full.
func (l *Limiter) Route(name string, limits []Limit) (*Route, error) {
	r := &Route{name: name, store: l.store, now: l.now}
	share := 1
	if l.store != nil {
		share = l.store.instances
	}
	seen := make(map[Key]int, len(limits))
	for _, lim := range limits {
		seen[lim.Key]++
	}
	items := make([]string, 0, len(limits))
	for i, lim := range limits {
		if err := lim.Validate(); err != nil {
			return nil, fmt.Errorf("route %q, limit %d: %w", name, i, err)
		}
		policyName := lim.Key.String()
		if seen[lim.Key] > 1 {
			policyName += "#" + strconv.Itoa(i)
		}
		rl := routeLimit{
			Limit:  lim,
			policy: Policy{Name: policyName, Quota: lim.Rate.N, Window: lim.Rate.Per, Burst: lim.burst()},
			limit:  lim.Rate.perSecond() / rate.Limit(share),
			burst:  max(1, lim.burst()/share),
		}
		if lim.Key.Kind == KeyRoute {
			rl.single = rate.NewLimiter(rl.limit, rl.burst)
		} else {
			rl.local = newBuckets(rl.limit, rl.burst, l.opts.maxKeys())
		}
		if l.store != nil {
			rl.prefix = l.store.keyPrefix + routeKey(name) + ":" + strconv.Itoa(i) + ":"
			r.args = append(r.args, l.store.scriptArgs(lim)...)
		}
		r.limits = append(r.limits, rl)
		items = append(items, rl.policy.item())
	}
	r.policyValue = strings.Join(items, ", ")
	return r, nil
}

// Name returns the route's name, as given to Limiter.Route.
func (r *Route) Name() string { return r.name }

// Allow decides whether a request may go on: clientIP is the client's
// address as the caller resolved it (X-Forwarded-For from trusted proxies
// already applied), h the request's header. It never fails: when the
// shared store does not answer within its timeout, the local buckets
// decide, and the Limiter switches to them until Redis is back.
func (r *Route) Allow(ctx context.Context, clientIP string, h http.Header) Decision {
	if len(r.limits) == 0 {
		d := Decision{Allowed: true, Limit: -1, Mode: ModeLocal}
		if r.store != nil {
			d.Mode = Mode(r.store.mode.Load())
		}
		return d
	}
	if r.store != nil && r.store.shared() {
		d, err := r.allowShared(ctx, clientIP, h)
		if err == nil {
			return d
		}
		// A caller that gave up (its client went away) says nothing
		// about Redis.
		if ctx.Err() == nil {
			r.store.fail(err)
		}
	}
	return r.allowLocal(clientIP, h)
}

func (r *Route) localMode() Mode {
	if r.store != nil {
		return ModeFallback
	}
	return ModeLocal
}

// multiValue is the key value of every request that carries the limit's
// header more than once (or a list in one line).
const multiValue = "\x00multiple values"

// value is the key value that limit l counts the request by, bounded in
// size (see boundKey).
func (l *routeLimit) value(clientIP string, h http.Header) string {
	switch l.Key.Kind {
	case KeyClientIP:
		return boundKey(clientIP)
	case KeyHeader:
		// net/http canonicalizes header names, and l.Key.Header is
		// canonical: index the map rather than pay Get's check.
		switch v := h[l.Key.Header]; {
		case len(v) > 1 || len(v) == 1 && strings.Contains(v[0], ","):
			// More than one value: which one the upstream believes is its
			// own business, so none is trusted as the key. Every such
			// request shares one bucket, or a client could put a new value
			// first each time and never be limited.
			return multiValue
		case len(v) == 1:
			return boundKey(v[0])
		}
	}
	return ""
}

func (l *routeLimit) bucket(value string) *rate.Limiter {
	if l.single != nil {
		return l.single
	}
	return l.local.get(value)
}

// allowLocal decides with the local token buckets. It first looks at every
// limit without taking a token, so that a request one limit refuses costs
// nothing from the others; then takes one token from each. Two requests
// racing for a last token may both pass the look and one then be refused
// after taking tokens from the limits before: a request is never allowed
// beyond a limit, at worst refused a token early.
func (r *Route) allowLocal(clientIP string, h http.Header) Decision {
	now := r.now()
	d := Decision{Allowed: true, Mode: r.localMode(), route: r, Remaining: math.MaxInt}
	var buf [4]*rate.Limiter
	lims := buf[:0]
	for i := range r.limits {
		lims = append(lims, r.limits[i].bucket(r.limits[i].value(clientIP, h)))
	}
	if len(lims) > 1 {
		for i, lim := range lims {
			if tokens := lim.TokensAt(now); tokens < 1 {
				d.refuse(i, &r.limits[i], tokens)
			}
		}
		if !d.Allowed {
			return d
		}
	}
	for i, lim := range lims {
		if !lim.AllowN(now, 1) {
			d.refuse(i, &r.limits[i], lim.TokensAt(now))
			return d
		}
	}
	for i, lim := range lims {
		tokens := lim.TokensAt(now)
		if rem := int(tokens); rem < d.Remaining {
			d.Limit, d.Policy, d.Remaining = i, r.limits[i].policy, rem
			d.Reset = durationOf(float64(r.limits[i].burst)-tokens, r.limits[i].limit)
		}
	}
	return d
}

// refuse records that limit i, whose bucket holds tokens (fewer than one),
// refuses the request, if it frees up later than any limit refusing before.
func (d *Decision) refuse(i int, l *routeLimit, tokens float64) {
	wait := durationOf(1-tokens, l.limit)
	if d.Allowed || wait > d.RetryAfter {
		d.Allowed = false
		d.RetryAfter, d.Remaining, d.Limit, d.Policy = wait, 0, i, l.policy
		d.Reset = durationOf(float64(l.burst)-tokens, l.limit)
	}
}

// durationOf is how long a bucket filling at limit takes to gain tokens,
// to the nearest nanosecond: rounding up would turn the float's noise into
// a whole second more of Retry-After (40.000000001s is 41).
func durationOf(tokens float64, limit rate.Limit) time.Duration {
	if tokens <= 0 {
		return 0
	}
	return time.Duration(math.Round(tokens / float64(limit) * float64(time.Second)))
}
