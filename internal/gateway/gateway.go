// Package gateway is holdfast's composition root: it turns a configuration
// into running listeners in front of a proxy.Handler, swaps configurations
// atomically on reload, and drains on shutdown.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/adaptive"
	"github.com/holdfast/holdfast/internal/alerts"
	"github.com/holdfast/holdfast/internal/cache"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/h1"
	"github.com/holdfast/holdfast/internal/health"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/proxy"
	"github.com/holdfast/holdfast/internal/ratelimit"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Options are what a Gateway needs beyond its configuration. The zero value
// is ready for production use.
type Options struct {
	// Logger receives events. nil means JSON to standard error.
	Logger *slog.Logger
	// Resolver resolves upstream names. nil means the system resolver.
	Resolver *net.Resolver
	// UpstreamTLS is the base TLS configuration towards https upstreams.
	// nil means the system roots.
	UpstreamTLS *tls.Config
	// AccessLog, when set, receives the access log instead of the
	// configured access_log.path (for tests and the demo).
	AccessLog io.Writer
	// Events observes attempts and requests (metrics, the demo). May be nil.
	Events proxy.Observer
	// Now is the clock of health state. nil means time.Now.
	Now func() time.Time
	// Version is holdfast's version, for holdfast_build_info. "" means
	// "dev".
	Version string
}

// Gateway runs holdfast's proxy for a configuration that can be replaced
// while it serves. Its methods are safe for concurrent use.
type Gateway struct {
	opts       Options
	log        *slog.Logger
	transports *proxy.Transports
	registry   *upstream.Registry
	health     *health.Runner
	metrics    *metrics.Registry
	alerts     *alerts.Notifier

	handler atomic.Pointer[proxy.Handler]
	cfg     atomic.Pointer[config.Config]

	mu        sync.Mutex // serialises Listen, Reload, rebuilds and Shutdown
	listeners map[string]*listener
	admin     *adminListener
	access    *proxy.AccessLog // the access log in force
	logFile   *os.File
	serveErr  chan error
	closed    bool
	draining  sync.WaitGroup // listeners removed by a reload, still draining
	conns     *connLimit     // client.max_connections, over every listener

	cache    atomic.Pointer[cache.Cache] // the shared store of cached routes; nil when none caches
	cacheCfg config.CacheStore           // what it was made with

	rl    *ratelimit.Limiter     // the routes' rate limits; shared through Redis with a store
	rlCfg *config.RateLimitStore // what rl was made for

	limitsMu sync.Mutex
	limits   map[string]*adaptive.Limiter // by pool and settings, kept across reloads

	rediscovered chan struct{} // discovery found new servers: rebuild
	stopRebuild  chan struct{}
	stopOnce     sync.Once
	rebuilder    sync.WaitGroup
}

type listener struct {
	key      string // addr plus TLS files: a change means a new socket
	addr     string // the configured address
	ln       net.Listener
	srv      server
	cert     atomic.Pointer[tls.Certificate]
	retiring atomic.Bool // its socket was closed on purpose: Serve's error is expected
	limit    *connLimit  // the gateway's, shared by its listeners
}

// New builds a gateway for cfg. It does not listen yet.
func New(cfg *config.Config, o Options) (*Gateway, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var err error
	g := &Gateway{
		opts:         o,
		log:          o.Logger,
		transports:   &proxy.Transports{Resolver: o.Resolver, TLSConfig: o.UpstreamTLS},
		registry:     &upstream.Registry{Now: o.Now},
		listeners:    make(map[string]*listener),
		serveErr:     make(chan error, 16),
		rediscovered: make(chan struct{}, 1),
		stopRebuild:  make(chan struct{}),
	}
	g.health = health.New(health.Options{
		Resolver:  o.Resolver,
		TLSConfig: o.UpstreamTLS,
		Logger:    o.Logger,
		Now:       o.Now,
		// Called from a discovery task, which a rebuild may be stopping:
		// it must not wait for the rebuild.
		Discovered: func(string) {
			select {
			case g.rediscovered <- struct{}{}:
			default:
			}
		},
	})
	g.metrics = metrics.New(metrics.Options{Version: o.Version, Pools: g.Pools, Now: o.Now})
	g.conns = newConnLimit(cfg.Client.MaxConnections, g.log)
	if g.rl, err = newRateLimiter(cfg.RateLimitStore, g.log); err != nil {
		return nil, err
	}
	g.rlCfg = cfg.RateLimitStore
	g.primeDiscovery(cfg)
	access, f, err := g.accessLogger(cfg)
	if err != nil {
		g.health.Close()
		g.rl.Close()
		return nil, err
	}
	h, err := g.build(cfg, access, g.rl)
	if err != nil {
		if f != nil {
			f.Close()
		}
		g.health.Close()
		g.rl.Close()
		return nil, err
	}
	g.handler.Store(h)
	g.cfg.Store(cfg)
	g.adoptCache(h, cfg)
	g.access, g.logFile = access, f
	g.registry.MarkStarted()
	g.health.Sync(h.Pools())
	g.metrics.Start()
	g.alerts = alerts.New(cfg.Alerts, alerts.Options{Metrics: g.metrics, Pools: g.Pools, Logger: g.log, Now: o.Now})
	g.alerts.Start()
	g.rebuilder.Go(g.rebuildOnDiscovery)
	return g, nil
}

// primeDiscovery looks up the servers of pools that discover them and have
// none yet, so that they start with servers; it waits at most 5s.
func (g *Gateway) primeDiscovery(cfg *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.health.Prime(ctx, cfg)
}

// build compiles cfg into a handler, with the servers discovery last found
// for the pools that discover theirs.
func (g *Gateway) build(cfg *config.Config, access *proxy.AccessLog, rl *ratelimit.Limiter) (*proxy.Handler, error) {
	var m *metrics.Registry
	if requestMetrics {
		m = g.metrics
	}
	return proxy.New(g.withDiscovered(cfg), proxy.Options{
		Transports: g.transports,
		Registry:   g.registry,
		Adaptive:   g.adaptiveFor,
		RateLimits: rl,
		Cache:      g.cacheFor(cfg),
		Metrics:    m,
		Logger:     g.log,
		AccessLog:  access,
		Events:     g.opts.Events,
	})
}

// cacheFor returns the shared cache for cfg: the one in use when its sizes
// are unchanged (stored responses survive a reload), a new one when they
// changed, nil when no route caches. A new one is put in force by commit,
// with the handler that uses it.
func (g *Gateway) cacheFor(cfg *config.Config) *cache.Cache {
	caches := false
	for _, r := range cfg.Routes {
		if r.Cache != nil && r.Cache.Enabled {
			caches = true
		}
	}
	if !caches {
		return nil
	}
	if c := g.cache.Load(); c != nil && g.cacheCfg == cfg.Cache {
		return c
	}
	return cache.New(cache.Config{MaxSize: cfg.Cache.MaxSize, MaxObject: cfg.Cache.MaxObject, Now: g.opts.Now})
}

// adoptCache puts the cache of h in force, with the sizes of cfg; the one
// it replaces is closed a minute later, when requests in flight on the old
// configuration are done with it. Called with g.mu held.
func (g *Gateway) adoptCache(h *proxy.Handler, cfg *config.Config) {
	c := h.Cache()
	if c == g.cache.Load() {
		return
	}
	g.cacheCfg = cfg.Cache
	if old := g.cache.Swap(c); old != nil {
		time.AfterFunc(time.Minute, old.Close)
	}
}

// newRateLimiter makes the routes' rate limiter: shared through the Redis
// of st, or local when st is nil.
func newRateLimiter(st *config.RateLimitStore, log *slog.Logger) (*ratelimit.Limiter, error) {
	o := ratelimit.Options{Logger: log}
	if st != nil {
		o.Store = &ratelimit.StoreOptions{URL: st.URL, Timeout: st.StoreTimeout, Instances: st.Instances}
	}
	l, err := ratelimit.New(o)
	if err != nil {
		return nil, fmt.Errorf("rate_limit_store: %w", err)
	}
	return l, nil
}

// RateLimits returns the state of the routes' rate limits: local, shared
// through Redis, or fallen back to local while Redis is out of reach.
func (g *Gateway) RateLimits() ratelimit.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rl.Status()
}

// adaptiveFor returns the adaptive limiter of a pool, the same across
// reloads while its settings do not change: a new one would start again
// from its minimum.
func (g *Gateway) adaptiveFor(pool string, c config.Adaptive) *adaptive.Limiter {
	k := fmt.Sprintf("%s\x00%d\x00%d", pool, c.MinLimit, c.MaxLimit)
	g.limitsMu.Lock()
	defer g.limitsMu.Unlock()
	if g.limits == nil {
		g.limits = make(map[string]*adaptive.Limiter)
	}
	l := g.limits[k]
	if l == nil {
		l = adaptive.New(adaptive.Config{MinLimit: c.MinLimit, MaxLimit: c.MaxLimit})
		g.limits[k] = l
		g.log.Info("adaptive concurrency limit", "pool", pool, "min_limit", c.MinLimit, "max_limit", c.MaxLimit)
	}
	return l
}

// retainLimits forgets the limiters of pools no longer adaptive in h's
// configuration.
func (g *Gateway) retainLimits(cfg *config.Config) {
	keep := map[string]bool{}
	for _, u := range cfg.Upstreams {
		if a := u.Adaptive; a != nil && a.Enabled {
			keep[fmt.Sprintf("%s\x00%d\x00%d", u.Name, a.MinLimit, a.MaxLimit)] = true
		}
	}
	g.limitsMu.Lock()
	defer g.limitsMu.Unlock()
	for k := range g.limits {
		if !keep[k] {
			delete(g.limits, k)
		}
	}
}

// withDiscovered returns cfg with the servers of pools that discover them
// filled in, as a copy: cfg itself stays as loaded.
func (g *Gateway) withDiscovered(cfg *config.Config) *config.Config {
	out := *cfg
	out.Upstreams = make([]*config.Upstream, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		out.Upstreams[i] = u
		if u.Discover != nil {
			cu := *u
			cu.Servers = g.health.Found(u.Name, *u.Discover)
			out.Upstreams[i] = &cu
		}
	}
	return &out
}

// rebuildOnDiscovery rebuilds the handler when discovery finds new servers,
// until Shutdown.
func (g *Gateway) rebuildOnDiscovery() {
	for {
		select {
		case <-g.stopRebuild:
			return
		case <-g.rediscovered:
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return
		}
		cfg := g.cfg.Load()
		h, err := g.build(cfg, g.access, g.rl)
		if err != nil {
			g.log.Error("discovered servers rejected: the pool keeps its servers", "err", err)
		} else {
			g.commit(h)
		}
		g.mu.Unlock()
	}
}

// commit puts h in force and brings health tasks, server state and
// connection pools in line with its pools. Called with g.mu held.
func (g *Gateway) commit(h *proxy.Handler) {
	g.handler.Store(h)
	g.adoptCache(h, g.cfg.Load())
	g.health.Sync(h.Pools())
	keep := make(map[string]bool)
	for _, p := range h.Pools() {
		for _, s := range p.Servers {
			keep[s.Key()] = true
		}
	}
	g.registry.Retain(keep)
	g.transports.Retain(h.Pools())
	var pools []string
	var servers [][2]string
	for _, p := range h.Pools() {
		pools = append(pools, p.Name)
		for _, s := range p.Servers {
			servers = append(servers, [2]string{p.Name, s.Name})
		}
	}
	g.metrics.Retain(h.RouteNames(), pools, servers)
}

// swapLogFile makes f the access-log file in force. The previous one is
// closed a minute later: requests in flight on the old handler may still
// write to it.
func (g *Gateway) swapLogFile(f *os.File) {
	if old := g.logFile; old != nil {
		time.AfterFunc(time.Minute, func() { old.Close() })
	}
	g.logFile = f
}

// swapAccessLog makes a the access log in force. The previous one writes
// what waits in its buffer now and from then on writes each line at once,
// for the requests still in flight on the old handler.
func (g *Gateway) swapAccessLog(a *proxy.AccessLog) {
	if old := g.access; old != nil && old != a {
		old.Close()
	}
	g.access = a
}

func (g *Gateway) accessLogger(cfg *config.Config) (*proxy.AccessLog, *os.File, error) {
	var w io.Writer
	var f *os.File
	switch p := cfg.AccessLog.Path; {
	case g.opts.AccessLog != nil:
		w = g.opts.AccessLog
	case p == "off":
		return nil, nil, nil
	case p == "" || p == "stdout":
		w = os.Stdout
	case p == "stderr":
		w = os.Stderr
	default:
		var err error
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("access_log: %w", err)
		}
		w = f
	}
	return proxy.NewBufferedAccessLog(w, int(cfg.AccessLog.Buffer), cfg.AccessLog.Flush), f, nil
}

// ServeHTTP serves a request with the configuration in force when it
// arrived; a reload does not affect requests already in flight.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := g.handler.Load()
	if r.Method == http.MethodOptions && r.RequestURI == "*" {
		h.ServeOptionsStar(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// Config returns the configuration in force.
func (g *Gateway) Config() *config.Config { return g.cfg.Load() }

// Handler returns the proxy handler in force.
func (g *Gateway) Handler() *proxy.Handler { return g.handler.Load() }

// Listen opens the configured listeners and starts serving on them. It
// returns once every socket is bound, or with the first bind error.
func (g *Gateway) Listen() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	cfg := g.cfg.Load()
	next, err := g.prepareAdmin(cfg)
	if err != nil {
		return err
	}
	if err := g.syncListeners(cfg); err != nil {
		g.abortAdmin(next)
		return err
	}
	g.commitAdmin(next)
	return nil
}

// Addrs returns the bound addresses of the listeners, in configuration order.
func (g *Gateway) Addrs() []net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []net.Addr
	for _, l := range g.cfg.Load().Listen {
		if ln, ok := g.listeners[listenerKey(l)]; ok {
			out = append(out, ln.ln.Addr())
		}
	}
	return out
}

func listenerKey(l config.Listener) string {
	k := l.Addr
	if l.TLS != nil {
		k += "|tls"
	}
	if l.HTTP2 != nil && !*l.HTTP2 {
		k += "|h1"
	}
	return k
}

// syncListeners opens listeners new in cfg, reloads certificates of those
// that remain, and gracefully closes those that went away.
func (g *Gateway) syncListeners(cfg *config.Config) error {
	want := make(map[string]config.Listener)
	for _, l := range cfg.Listen {
		want[listenerKey(l)] = l
	}
	// Load certificates first, so that a bad one leaves everything as it was.
	certs := make(map[string]*tls.Certificate)
	for k, l := range want {
		if l.TLS != nil {
			c, err := tls.LoadX509KeyPair(l.TLS.Cert, l.TLS.Key)
			if err != nil {
				return fmt.Errorf("listener %s: %w", l.Addr, err)
			}
			certs[k] = &c
		}
	}
	// An address that stays but changes kind (plain and TLS, HTTP/2 on or
	// off) needs a new socket on the same port: the old one stops accepting
	// first, its connections drain below, and it comes back if the new one
	// cannot bind.
	wantAddr := make(map[string]bool)
	for _, l := range want {
		wantAddr[l.Addr] = true
	}
	var released []*listener
	for k, ln := range g.listeners {
		if _, ok := want[k]; !ok && wantAddr[ln.addr] {
			ln.retiring.Store(true)
			ln.ln.Close()
			released = append(released, ln)
		}
	}
	var opened []*listener
	for k, l := range want {
		if ln, ok := g.listeners[k]; ok {
			if c := certs[k]; c != nil {
				ln.cert.Store(c)
			}
			continue
		}
		ln, err := g.open(cfg, l, certs[k])
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			for _, r := range released {
				if berr := r.bind(); berr != nil {
					g.log.Error("listener lost: its address could not be bound again after a failed reload", "addr", r.addr, "err", berr)
					continue
				}
				r.retiring.Store(false)
				go g.serve(r)
			}
			return err
		}
		opened = append(opened, ln)
	}
	for _, ln := range opened {
		g.listeners[ln.key] = ln
		go g.serve(ln)
	}
	for k, ln := range g.listeners {
		if _, ok := want[k]; !ok {
			delete(g.listeners, k)
			g.draining.Add(1)
			go func() {
				defer g.draining.Done()
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
				defer cancel()
				if ln.srv.Shutdown(ctx) != nil {
					// As on SIGTERM: what still runs after the drain
					// timeout is closed, and the server's resources
					// (its parked connections' set) released.
					ln.srv.Close()
				}
			}()
		}
	}
	return nil
}

func (g *Gateway) open(cfg *config.Config, l config.Listener, cert *tls.Certificate) (*listener, error) {
	ln := &listener{key: listenerKey(l), addr: l.Addr, limit: g.conns}
	if err := ln.bind(); err != nil {
		return nil, err
	}
	if cert == nil {
		// Plain listeners get holdfast's own HTTP/1.1 server: strict
		// framing (the smuggling defence) and less work per request.
		ln.srv = &h1.Server{
			Handler:           g,
			Reject:            g.reject,
			ReadHeaderTimeout: cfg.Client.ReadHeaderTimeout,
			IdleTimeout:       cfg.Client.IdleTimeout,
			MaxHeaderBytes:    int(cfg.Client.MaxHeaderBytes),
			Log:               g.log,
		}
		return ln, nil
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: cfg.Client.ReadHeaderTimeout,
		IdleTimeout:       cfg.Client.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Client.MaxHeaderBytes),
		ErrorLog:          log.New(&serverLogWriter{g.log}, "", 0),
		// OPTIONS * is answered by the proxy, as on plain listeners.
		DisableGeneralOptionsHandler: true,
	}
	ln.cert.Store(cert)
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return ln.cert.Load(), nil
		},
	}
	if l.HTTP2 == nil || *l.HTTP2 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	} else {
		tc.NextProtos = []string{"http/1.1"}
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	srv.TLSConfig = tc
	ln.srv = tlsServer{srv}
	return ln, nil
}

// server is what serves a listener: h1.Server on plain listeners, net/http
// (HTTP/2 and HTTP/1.1) on TLS ones.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// tlsServer serves TLS with net/http.
type tlsServer struct{ *http.Server }

func (s tlsServer) Serve(ln net.Listener) error { return s.ServeTLS(ln, "", "") }

// reject answers a request h1.Server refused (a smuggling shape, a bad
// Content-Length, ...) through the proxy, so that it is logged.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, status int, reason string) {
	w.Header().Set("Connection", "close")
	g.handler.Load().Reject(w, r, status, reason)
}

// bind opens the listener's socket under the connection limit.
func (ln *listener) bind() error {
	nl, err := net.Listen("tcp", ln.addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", ln.addr, err)
	}
	ln.ln = &limitListener{Listener: nl, lim: ln.limit}
	return nil
}

func (g *Gateway) serve(ln *listener) {
	err := ln.srv.Serve(ln.ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !ln.retiring.Load() {
		g.log.Error("listener failed", "addr", ln.ln.Addr().String(), "err", err)
		select {
		case g.serveErr <- fmt.Errorf("listener %s: %w", ln.ln.Addr(), err):
		default:
		}
	}
}

// Errors returns a channel that receives a listener's fatal error.
func (g *Gateway) Errors() <-chan error { return g.serveErr }

// Reload swaps in cfg atomically: requests in flight finish on the old
// configuration, new ones use the new one, and server health carries over
// for servers that remain. If cfg cannot be built, nothing changes and the
// error says why.
func (g *Gateway) Reload(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("gateway is shut down")
	}
	g.primeDiscovery(cfg)
	access, f, err := g.accessLogger(cfg)
	if err != nil {
		g.metrics.Reloaded(false)
		return err
	}
	rl := g.rl
	if !reflect.DeepEqual(cfg.RateLimitStore, g.rlCfg) {
		if rl, err = newRateLimiter(cfg.RateLimitStore, g.log); err != nil {
			if f != nil {
				f.Close()
			}
			g.metrics.Reloaded(false)
			return err
		}
	}
	h, err := g.build(cfg, access, rl)
	var adm *adminListener
	if err == nil {
		adm, err = g.prepareAdmin(cfg)
	}
	if err == nil {
		if err = g.syncListeners(cfg); err != nil {
			g.abortAdmin(adm)
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		if rl != g.rl {
			rl.Close()
		}
		g.metrics.Reloaded(false)
		return err
	}
	if rl != g.rl {
		// Requests in flight on the old routes decide locally once it is
		// closed.
		g.rl.Close()
		g.rl, g.rlCfg = rl, cfg.RateLimitStore
	}
	g.commitAdmin(adm)
	g.retainLimits(cfg)
	g.metrics.Reloaded(true)
	g.alerts.Update(cfg.Alerts)
	g.cfg.Store(cfg)
	g.conns.setMax(cfg.Client.MaxConnections)
	g.swapAccessLog(access)
	g.swapLogFile(f)
	g.commit(h)
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight to
// finish, until ctx ends; then it closes what is left.
//
// The admin listener serves until the end, /readyz answering 503 from the
// start, so that a load balancer in front sees the drain; health checks and
// discovery stop first.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	lns := make([]*listener, 0, len(g.listeners))
	for _, ln := range g.listeners {
		lns = append(lns, ln)
	}
	g.mu.Unlock()
	g.stopOnce.Do(func() { close(g.stopRebuild) })
	g.rebuilder.Wait()
	g.health.Close()
	g.alerts.Close()
	g.metrics.Close()
	if c := g.cache.Load(); c != nil {
		defer c.Close() // after the requests in flight
	}
	defer func() {
		g.mu.Lock()
		g.rl.Close()
		g.mu.Unlock()
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(lns))
	for i, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ln.srv.Shutdown(ctx); err != nil {
				errs[i] = err
				ln.srv.Close()
			}
		}()
	}
	wg.Wait()
	g.draining.Wait()
	g.transports.CloseIdle()
	g.mu.Lock()
	if g.access != nil {
		g.access.Close()
	}
	if g.logFile != nil {
		g.logFile.Close()
		g.logFile = nil
	}
	adm := g.admin
	g.admin = nil
	g.mu.Unlock()
	if adm != nil {
		adm.close()
	}
	return errors.Join(errs...)
}

// serverLogWriter sends net/http's own server messages (TLS handshake
// errors, bad requests) to the event log at debug level: they are about
// clients, not about holdfast.
type serverLogWriter struct{ log *slog.Logger }

func (w *serverLogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.log.Debug("http server", "msg", msg)
	return len(p), nil
}
