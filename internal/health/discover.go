package health

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/upstream"
)

// maxSRVWeight is the largest weight a discovered server gets: SRV weights
// run to 65535, and a hash ring holds 160 points per unit of weight.
const maxSRVWeight = 100

// Found is what discovery last learnt for a pool.
type Found struct {
	// Servers are the servers of the last good answer, primaries first;
	// nil before any.
	Servers []config.Server
	// At is the time of the last lookup, good or not.
	At time.Time
	// Err is the last lookup's failure; nil when it succeeded.
	Err *upstream.Failure
}

func discoverKey(pool string, d *config.Discover) string {
	mf := -1
	if d.Server.MaxFails != nil {
		mf = *d.Server.MaxFails
	}
	return fmt.Sprintf("discover\x00%s\x00%s\x00%s\x00%s\x00%d\x00%s", pool, d.SRV, d.Refresh, d.Scheme, mf, d.Server.FailTimeout)
}

func foundKey(pool string, d config.Discover) string { return pool + "\x00" + d.SRV }

// Found returns the servers discovery last found for pool with settings d,
// or nil before any good answer.
func (r *Runner) Found(pool string, d config.Discover) []config.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.found[foundKey(pool, d)]; f != nil {
		return f.Servers
	}
	return nil
}

// Prime looks up, at once and in parallel, the SRV records of every pool of
// cfg that discovers its servers and has no answer yet, so that the first
// configuration starts with servers. It returns when all are done or ctx
// ends; failures are logged and leave those pools empty until a later
// lookup succeeds.
func (r *Runner) Prime(ctx context.Context, cfg *config.Config) {
	var wg sync.WaitGroup
	for _, u := range cfg.Upstreams {
		if u.Discover == nil || r.Found(u.Name, *u.Discover) != nil {
			continue
		}
		wg.Go(func() { r.discover(ctx, u.Name, *u.Discover) })
	}
	wg.Wait()
}

// discoverLoop looks up the pool's SRV records every refresh interval
// (shortened by up to a tenth at random) until ctx ends, and calls
// Options.Discovered when the servers change.
func (r *Runner) discoverLoop(pool string, d config.Discover) func(context.Context) {
	return func(ctx context.Context) {
		every := d.Refresh
		for sleep(ctx, every-time.Duration(rand.Int64N(int64(every/10)+1))) {
			if r.discover(ctx, pool, d) && r.o.Discovered != nil {
				r.o.Discovered(pool)
			}
		}
	}
}

// discover runs one lookup for pool, records it and reports whether the
// servers changed.
func (r *Runner) discover(ctx context.Context, pool string, d config.Discover) (changed bool) {
	lctx, cancel := context.WithTimeout(ctx, min(d.Refresh, maxLookup))
	_, recs, err := r.o.Resolver.LookupSRV(lctx, "", "", d.SRV)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	servers := serversFromSRV(recs, d)
	if err == nil && len(servers) == 0 {
		err = errEmptyAnswer
	}
	now := r.o.Now()
	key := foundKey(pool, d)
	r.mu.Lock()
	f := r.found[key]
	if f == nil {
		f = new(Found)
		if r.found != nil {
			r.found[key] = f
		}
	}
	f.At = now
	wasFailing := f.Err != nil
	hadServers := f.Servers != nil
	if err != nil && (len(servers) == 0 || len(recs) == 0) {
		cs := lookupCause(err)
		f.Err = &upstream.Failure{Cause: cs.String(), Detail: err.Error(), Source: "dns", At: now}
		r.mu.Unlock()
		if !wasFailing {
			level := "warn"
			if !hadServers {
				level = "error"
			}
			r.logLookup(level, "SRV lookup failed: the pool keeps the servers of the last good answer",
				"pool", pool, "srv", d.SRV, "cause", cs.String(), "err", err)
		}
		return false
	}
	// A partly bad answer (a target that is not a valid name) still
	// carries the good records, which Go's resolver returns with the error.
	f.Err = nil
	changed = !slices.Equal(f.Servers, servers)
	old := f.Servers
	f.Servers = servers
	r.mu.Unlock()
	if changed || wasFailing {
		r.o.Logger.Info("servers discovered", "pool", pool, "srv", d.SRV, "servers", serverURLs(servers), "was", serverURLs(old))
	}
	return changed
}

// serversFromSRV turns SRV records into servers: target and port, weight
// scaled to at most maxSRVWeight, the lowest priority as primaries and the
// others as backups, sorted so that equal answers give equal lists.
func serversFromSRV(recs []*net.SRV, d config.Discover) []config.Server {
	usable := func(rec *net.SRV) bool {
		// "." is the SRV way of saying "no service here".
		return strings.TrimSuffix(rec.Target, ".") != "" && rec.Port != 0
	}
	lowest, heaviest, any := uint16(0), uint16(0), false
	for _, rec := range recs {
		if !usable(rec) {
			continue
		}
		if !any || rec.Priority < lowest {
			lowest = rec.Priority
		}
		any = true
		heaviest = max(heaviest, rec.Weight)
	}
	if !any {
		return nil
	}
	type entry struct {
		prio uint16
		s    config.Server
	}
	var es []entry
	seen := make(map[string]bool)
	for _, rec := range recs {
		if !usable(rec) {
			continue
		}
		target := strings.ToLower(strings.TrimSuffix(rec.Target, "."))
		u := d.Scheme + "://" + net.JoinHostPort(target, strconv.Itoa(int(rec.Port)))
		if seen[u] {
			continue
		}
		seen[u] = true
		w := int(rec.Weight)
		if heaviest > maxSRVWeight {
			w = (w*maxSRVWeight + int(heaviest)/2) / int(heaviest)
		}
		es = append(es, entry{rec.Priority, config.Server{
			URL:         u,
			Weight:      max(w, 1),
			MaxFails:    d.Server.MaxFails,
			FailTimeout: d.Server.FailTimeout,
			MaxConns:    d.Server.MaxConns,
			Backup:      rec.Priority != lowest,
		}})
	}
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), strings.Compare(a.s.URL, b.s.URL))
	})
	out := make([]config.Server, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

func serverURLs(servers []config.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.URL
	}
	return out
}
