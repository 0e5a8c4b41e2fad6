package gateway

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/admin"
	"github.com/holdfast/holdfast/internal/cache"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/upstream"
)

// adminListener is the admin API's socket and server.
type adminListener struct {
	addr  string // as configured
	token string // the bearer token in force ("" when none is configured)
	ln    net.Listener
	srv   *http.Server
}

// AdminAddr returns the bound address of the admin listener, or nil when
// there is none.
func (g *Gateway) AdminAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.admin == nil {
		return nil
	}
	return g.admin.ln.Addr()
}

// prepareAdmin returns the admin listener cfg asks for: the one in force
// when its address is unchanged (with cfg's token), a newly bound one, or
// nil for none. Nothing in force changes until commitAdmin.
func (g *Gateway) prepareAdmin(cfg *config.Config) (*adminListener, error) {
	if cfg.Admin.Addr == "" {
		return nil, nil
	}
	var token string
	if f := cfg.Admin.TokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("admin.token_file: %s is empty", f)
		}
	}
	if cur := g.admin; cur != nil && cur.addr == cfg.Admin.Addr {
		return &adminListener{addr: cur.addr, token: token, ln: cur.ln, srv: cur.srv}, nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", cfg.Admin.Addr, err)
	}
	a := &adminListener{addr: cfg.Admin.Addr, token: token, ln: ln}
	a.srv = &http.Server{
		Handler: admin.New(admin.Options{
			Backend:       adminBackend{g},
			Metrics:       g.metrics,
			RateLimits:    func() any { return g.RateLimits() },
			Cache:         adminCache{g},
			Token:         g.adminToken,
			TokenForReads: !loopback(ln.Addr()),
			Logger:        g.log,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		// No call reads more than a small body: a client that dribbles
		// one must not hold a connection (and a file descriptor the
		// gateway shares) for good.
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   time.Minute,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       log.New(&serverLogWriter{g.log}, "", 0),
	}
	return a, nil
}

// abortAdmin undoes prepareAdmin after a failed reload.
func (g *Gateway) abortAdmin(next *adminListener) {
	if next != nil && (g.admin == nil || next.ln != g.admin.ln) {
		next.ln.Close()
	}
}

// commitAdmin puts next in force: it starts serving if new, and the
// listener it replaces is closed once its calls end (the reload call that
// moved it among them). Called with g.mu held.
func (g *Gateway) commitAdmin(next *adminListener) {
	old := g.admin
	g.admin = next
	if next != nil && (old == nil || old.ln != next.ln) {
		g.log.Info("admin listener", "addr", next.ln.Addr().String(), "token", next.token != "")
		go next.srv.Serve(next.ln)
	}
	if old != nil && (next == nil || old.ln != next.ln) {
		g.draining.Add(1)
		go func() {
			defer g.draining.Done()
			old.close()
		}()
	}
}

// close stops the admin server, letting calls in flight end for a while.
func (a *adminListener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if a.srv.Shutdown(ctx) != nil {
		a.srv.Close()
	}
}

func (g *Gateway) adminToken() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.admin == nil {
		return ""
	}
	return g.admin.token
}

// loopback reports whether a is a loopback address.
func loopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// Metrics returns the gateway's metrics.
func (g *Gateway) Metrics() *metrics.Registry { return g.metrics }

// Pools returns a snapshot of every pool in force.
func (g *Gateway) Pools() []upstream.PoolStatus {
	now := g.opts.Now()
	h := g.handler.Load()
	pools := h.Pools()
	out := make([]upstream.PoolStatus, len(pools))
	for i, p := range pools {
		out[i] = p.Status(now)
		lim, ok, queued := h.PoolLimits(p.Name)
		out[i].Queued = queued
		if ok {
			out[i].Adaptive = &upstream.LimitStatus{Limit: lim.Limit, InFlight: lim.InFlight,
				MinRTTms: ms(lim.MinRTT), SampleRTTms: ms(lim.SampleRTT), Probing: lim.Probing}
		}
	}
	return out
}

// SetDrained drains (true) or enables (false)
// a server of a pool in force. A drained server takes no new requests,
// finishes those in flight, keeps being checked, and stays drained across
// reloads until enabled.
func (g *Gateway) SetDrained(pool, url string, drained bool) (upstream.ServerStatus, error) {
	for _, p := range g.handler.Load().Pools() {
		if p.Name != pool {
			continue
		}
		for _, s := range p.Servers {
			if s.Name == url {
				s.State.SetDrained(drained)
				return s.Status(g.opts.Now(), p.Config.Health.Path != ""), nil
			}
		}
		return upstream.ServerStatus{}, fmt.Errorf("pool %s has no server %s: %w", pool, url, admin.ErrNotFound)
	}
	return upstream.ServerStatus{}, fmt.Errorf("no pool %s: %w", pool, admin.ErrNotFound)
}

// ReloadFile loads the configuration file in force again and puts it in
// force, as SIGHUP does. On error the previous configuration keeps serving.
func (g *Gateway) ReloadFile() (*config.Config, error) {
	file := g.cfg.Load().File
	if file == "" {
		return nil, errors.New("the configuration was not loaded from a file")
	}
	next, err := config.Load(file)
	if err != nil {
		g.metrics.Reloaded(false)
		return nil, err
	}
	if err := g.Reload(next); err != nil {
		return nil, err
	}
	return next, nil
}

// adminBackend is the gateway as the admin API sees it.
type adminBackend struct{ *Gateway }

// Reload implements admin.Backend: the same as SIGHUP.
func (b adminBackend) Reload() (string, error) {
	g := b.Gateway
	next, err := g.ReloadFile()
	if err != nil {
		g.log.Error("reload rejected: the previous configuration keeps serving", "config", g.cfg.Load().File, "err", err, "by", "admin")
		return "", err
	}
	g.log.Info("configuration reloaded", "config", next.File, "by", "admin")
	return config.Summary(next), nil
}

// Ready returns nil when the listeners are bound and
// every pool has a server that takes requests.
func (g *Gateway) Ready() error {
	g.mu.Lock()
	closed, bound := g.closed, len(g.listeners)
	g.mu.Unlock()
	switch {
	case closed:
		return errors.New("shutting down")
	case bound == 0:
		return errors.New("the listeners are not bound yet")
	}
	var empty []string
	now := g.opts.Now()
	for _, p := range g.handler.Load().Pools() {
		n := 0
		for _, s := range p.Servers {
			if s.Available(now) {
				n++
			}
		}
		if n == 0 {
			empty = append(empty, p.Name)
		}
	}
	if len(empty) > 0 {
		return fmt.Errorf("no server takes requests in pool %s", strings.Join(empty, ", "))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// adminCache is the shared cache as the admin API sees it.
type adminCache struct{ g *Gateway }

// Purge implements admin.Cache. The target's scheme and host are lower-
// cased as the cache's keys are.
func (a adminCache) Purge(target string, prefix bool) int {
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		target = u.String()
	}
	if c := a.g.cache.Load(); c != nil {
		return c.Purge(target, prefix)
	}
	return 0
}

// Stats implements admin.Cache.
func (a adminCache) Stats() any {
	if c := a.g.cache.Load(); c != nil {
		return c.Stats()
	}
	return cache.Stats{}
}
