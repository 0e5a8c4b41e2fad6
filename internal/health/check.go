package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/limits"
	"github.com/holdfast/holdfast/internal/upstream"
)

// maxCheckBody is how much of a check's response body is read, and
// matched against health.body.
const maxCheckBody = 64 << 10

// UserAgent is the User-Agent of every check, so that servers can tell
// checks from traffic in their logs.
const UserAgent = "holdfast-health-check"

func checkKey(pool string, s *upstream.Server, h config.Health) string {
	// fmt prints maps with sorted keys: equal settings give equal keys.
	return fmt.Sprintf("check\x00%s\x00%s\x00%d\x00%+v", pool, s.Name, s.Weight, h)
}

// checker checks one server of one pool.
type checker struct {
	r      *Runner
	pool   string
	server *upstream.Server
	h      config.Health
	lo, hi int            // the passing status range
	body   *regexp.Regexp // nil: any body
	client *http.Client
	url    string
}

func (r *Runner) checkLoop(p *upstream.Pool, s *upstream.Server, h config.Health) func(context.Context) {
	c := &checker{r: r, pool: p.Name, server: s, h: h}
	// The settings were validated when the configuration loaded.
	c.lo, c.hi, _ = config.ParseStatusRange(h.Status)
	if h.Body != "" {
		c.body = regexp.MustCompile(h.Body)
	}
	c.url = s.URL.Scheme + "://" + s.Addr + h.Path
	var tc *tls.Config
	if s.URL.Scheme == "https" {
		if r.o.TLSConfig != nil {
			tc = r.o.TLSConfig.Clone()
		} else {
			tc = &tls.Config{}
		}
		tc.ServerName = s.URL.Hostname()
		tc.NextProtos = []string{"http/1.1"}
	}
	c.client = &http.Client{
		Transport: &http.Transport{
			Proxy:           nil,
			DialContext:     c.dial,
			TLSClientConfig: tc,
			// Every check opens its own connection: a check must see what a
			// new connection sees, and must never take or leave one in the
			// pool that requests use.
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: limits.MaxResponseHeaderBytes,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c.loop
}

// loop checks the server every interval until ctx ends. The first check
// comes after a random share of the interval, and each wait is shortened by
// up to a tenth at random, so that servers configured alike drift apart
// instead of being checked in step. A server awaiting a mandatory first
// check is checked at once.
func (c *checker) loop(ctx context.Context) {
	defer c.client.CloseIdleConnections()
	iv := c.h.Interval
	wait := time.Duration(rand.Int64N(int64(iv)))
	if c.server.State.AwaitingFirstCheck() {
		wait = time.Duration(rand.Int64N(int64(min(iv/10, 100*time.Millisecond)) + 1))
	}
	for sleep(ctx, wait) {
		select {
		case c.r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		ok, cs, detail := c.check(ctx)
		<-c.r.sem
		if ctx.Err() != nil {
			return // stopped mid-check: the result says nothing of the server
		}
		c.record(ok, cs, detail)
		wait = iv - time.Duration(rand.Int64N(int64(iv/10)+1))
	}
}

// record keeps one check's outcome and logs a change of state.
func (c *checker) record(ok bool, cs cause.Cause, detail string) {
	now := c.r.o.Now()
	switch c.server.State.CheckResult(ok, cs.String(), detail, c.h.Rise, c.h.Fall, now) {
	case upstream.WentDown:
		c.r.o.Logger.Warn("server down: active checks failed",
			"pool", c.pool, "server", c.server.Name, "cause", cs.String(), "detail", detail, "fall", c.h.Fall)
	case upstream.CameUp:
		c.r.o.Logger.Info("server up: active checks pass",
			"pool", c.pool, "server", c.server.Name, "rise", c.h.Rise, "slow_start", c.server.SlowStart.String())
	}
}

// check runs one check and names the cause when it fails.
func (c *checker) check(ctx context.Context) (ok bool, cs cause.Cause, detail string) {
	ctx, cancel := context.WithTimeout(ctx, min(c.h.Timeout, c.h.Interval))
	defer cancel()
	var tr cause.Tracker
	req, err := http.NewRequestWithContext(tr.WithContext(ctx), c.h.Method, c.url, nil)
	if err != nil {
		return false, cause.ProxyInternalError, err.Error()
	}
	req.Host = c.server.URL.Host
	if c.h.Host != "" {
		req.Host = c.h.Host
	}
	req.Header.Set("User-Agent", UserAgent)
	for k, v := range c.h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		cs := tr.Classify(err)
		return false, cs, err.Error()
	}
	defer resp.Body.Close()
	tr.Reading()
	if resp.StatusCode < c.lo || resp.StatusCode > c.hi {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody))
		return false, cause.UpstreamStatus, fmt.Sprintf("status %d, want %s", resp.StatusCode, c.h.Status)
	}
	if c.body == nil && c.h.Method != http.MethodHead {
		// The body still has to arrive whole: a server that stalls after
		// its header is not healthy.
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody)); err != nil {
			return false, tr.Classify(err), err.Error()
		}
		return true, cause.None, ""
	}
	if c.body == nil {
		return true, cause.None, ""
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	if err != nil {
		return false, tr.Classify(err), err.Error()
	}
	if !c.body.Match(b) {
		return false, cause.UpstreamStatus, fmt.Sprintf("body does not match %q", c.h.Body)
	}
	return true, cause.None, ""
}

// dial connects to the server at the addresses DNS last gave for it, in
// turn, or resolves its host now when none is known.
func (c *checker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Resolver: c.r.o.Resolver}
	addrs := c.server.DialAddrs()
	if addrs == nil {
		return d.DialContext(ctx, network, addr)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, a)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
