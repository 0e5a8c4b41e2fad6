package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Valid values of the enumerated keys.
var (
	balancePolicies = []string{"round_robin", "least_conn", "p2c", "hash"}
	retryConditions = []string{"error", "timeout", "http_502", "http_503", "http_504", "http_429"}
	failConditions  = []string{"error", "timeout", "http_500", "http_502", "http_503", "http_504", "http_429"}
)

const (
	maxTries  = 20
	maxWeight = 1_000_000
)

// poolName is what an upstream may be called: it appears in paths, logs and
// metric labels.
var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// at returns the node of the value at path or, when the key is absent, of
// the nearest enclosing key or list item present in the file, so that a
// problem with a default points at the block that lacks the key.
func (d *decoder) at(path string) *yaml.Node {
	if n, ok := d.nodes[path]; ok {
		return n
	}
	for path != "" {
		path = parent(path)
		if k, ok := d.keys[path]; ok {
			return k
		}
		if n, ok := d.nodes[path]; ok {
			return n
		}
	}
	return nil
}

// where names the item at path for a message: "listen[0] (line 2)", or
// "the default listen[0]" when the item is not in the file.
func (d *decoder) where(path string) string {
	if n, ok := d.nodes[path]; ok {
		return fmt.Sprintf("%s (line %d)", path, n.Line)
	}
	return "the default " + path
}

func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// decodeFailed reports whether path or one of its ancestors had a value that
// could not be decoded: that was reported once already.
func (d *decoder) decodeFailed(path string) bool {
	for {
		if d.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parent(path)
	}
}

// invalid records a validation problem with the value at path.
func (d *decoder) invalid(path string, err error, format string, args ...any) {
	if d.decodeFailed(path) {
		return
	}
	d.errorf(d.at(path), path, err, format, args...)
}

func (d *decoder) validate(c *Config) {
	d.validateListeners(c)
	d.validateAdmin(c)
	pools := make(map[string]*Upstream, len(c.Upstreams))
	for _, u := range c.Upstreams {
		pools[u.Name] = u
		d.validateUpstream(u)
	}
	d.validateRoutes(c, pools)
	d.validateAlerts(&c.Alerts)
	d.positive("cache.max_size", c.Cache.MaxSize)
	d.positive("cache.max_object", c.Cache.MaxObject)
	if c.Cache.MaxObject > c.Cache.MaxSize {
		d.invalid("cache.max_object", nil, "%d bytes is more than max_size (%d)", c.Cache.MaxObject, c.Cache.MaxSize)
	}
	if st := c.RateLimitStore; st != nil {
		if u, err := url.Parse(st.URL); st.URL == "" || err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// The URL may hold a password: never repeat it.
			shown := "a URL that does not parse"
			if err == nil {
				shown = strconv.Quote(u.Redacted())
			}
			d.invalid("rate_limit_store.url", nil, `want a Redis URL like "redis://127.0.0.1:6379/0", got %s`, shown)
		}
		d.positive("rate_limit_store.store_timeout", int64(st.StoreTimeout))
		if st.Instances < 1 {
			d.invalid("rate_limit_store.instances", nil, "want 1 or more, got %d", st.Instances)
		}
	}
	for i, s := range c.TrustedProxies {
		p := fmt.Sprintf("trusted_proxies[%d]", i)
		cidr, err := normaliseCIDR(s)
		if err != nil {
			d.invalid(p, err, "%v", err)
			continue
		}
		c.TrustedProxies[i] = cidr
	}
	d.positive("client.max_header_bytes", c.Client.MaxHeaderBytes)
	d.positive("client.read_header_timeout", int64(c.Client.ReadHeaderTimeout))
	d.positive("client.idle_timeout", int64(c.Client.IdleTimeout))
	d.positive("client.max_header_count", int64(c.Client.MaxHeaderCount))
	d.positive("client.body_timeout", int64(c.Client.BodyTimeout))
	d.positive("client.send_timeout", int64(c.Client.SendTimeout))
	d.positive("client.max_connections", int64(c.Client.MaxConnections))
	switch c.AccessLog.Path {
	case "stdout", "stderr", "off":
	case "":
		d.invalid("access_log.path", nil, "want stdout, stderr, off or a file path")
	default:
		c.AccessLog.Path = d.resolve(c.AccessLog.Path)
		if fi, err := os.Stat(filepath.Dir(c.AccessLog.Path)); err != nil || !fi.IsDir() {
			d.invalid("access_log.path", err, "the directory of %s does not exist", c.AccessLog.Path)
		}
	}
	if b := c.AccessLog.Buffer; b < 0 || b > 16<<20 {
		d.invalid("access_log.buffer", nil, "want a size from 0 (no buffer) to 16MiB, got %d bytes", b)
	}
	d.positive("access_log.flush", int64(c.AccessLog.Flush))
	d.positive("shutdown.drain_timeout", int64(c.Shutdown.DrainTimeout))
}

// positive reports a value that must be more than zero and is not.
func (d *decoder) positive(path string, v int64) {
	if v <= 0 {
		d.invalid(path, nil, "must be more than 0")
	}
}

func (d *decoder) validateListeners(c *Config) {
	if len(c.Listen) == 0 {
		d.invalid("listen", nil, `at least one listener is required (without the listen key, holdfast listens on ":8080")`)
	}
	type bound struct {
		host, path string
	}
	ports := make(map[string][]bound)
	for i := range c.Listen {
		l := &c.Listen[i]
		p := fmt.Sprintf("listen[%d]", i)
		if l.Addr == "" {
			d.invalid(p+".addr", nil, `required: want host:port like ":8080"`)
		} else if host, port, err := checkAddr(l.Addr); err != nil {
			d.invalid(p+".addr", err, "%v", err)
		} else if port != "0" {
			for _, b := range ports[port] {
				if b.host == host || wildcard(b.host) || wildcard(host) {
					d.invalid(p+".addr", nil, "%s overlaps %s: they cannot both be bound", l.Addr, d.where(b.path))
					break
				}
			}
			ports[port] = append(ports[port], bound{host, p})
		}
		if l.TLS != nil {
			if l.TLS.Cert == "" {
				d.invalid(p+".tls.cert", nil, "required: the certificate file (PEM)")
			} else {
				d.readable(p+".tls.cert", &l.TLS.Cert, "certificate file")
			}
			if l.TLS.Key == "" {
				d.invalid(p+".tls.key", nil, "required: the private key file (PEM)")
			} else {
				d.readable(p+".tls.key", &l.TLS.Key, "key file")
			}
		}
	}
	if c.Admin.Addr == "" {
		return
	}
	host, port, err := checkAddr(c.Admin.Addr)
	if err != nil {
		d.invalid("admin.addr", err, "%v", err)
		return
	}
	for _, b := range ports[port] {
		if port != "0" && (b.host == host || wildcard(b.host) || wildcard(host)) {
			d.invalid("admin.addr", nil, "%s overlaps %s: the admin listener needs its own address", c.Admin.Addr, d.where(b.path))
			break
		}
	}
}

func (d *decoder) validateAlerts(a *Alerts) {
	if a.Webhook != "" {
		u, err := url.Parse(a.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.invalid("alerts.webhook", err, "want an http or https URL like https://hooks.example.com/holdfast, got %q", a.Webhook)
		}
	}
	if a.Format != "json" && a.Format != "slack" {
		d.invalid("alerts.format", nil, "want json or slack, got %q", a.Format)
	}
	d.positive("alerts.interval", int64(a.Interval))
	if a.ErrorPercent <= 0 {
		d.invalid("alerts.error_percent", nil, "must be more than 0")
	}
}

// staleConditions are the failures cache.use_stale may list.
var staleConditions = []string{"error", "timeout", "http_500", "http_502", "http_503", "http_504", "updating"}

// maxRateCount bounds the N of a rate and a burst, as the limiter does.
const maxRateCount = 1_000_000_000

// rateSyntax is how a rate limit's rate is written: N/s, N/m or N/h.
var rateSyntax = regexp.MustCompile(`^\s*[0-9]+\s*/\s*[smh]\s*$`)

// validateRateLimits checks a route's rate limits.
func (d *decoder) validateRateLimits(p string, limits []RateLimit) {
	for i, l := range limits {
		lp := fmt.Sprintf("%s.rate_limits[%d]", p, i)
		switch kind, name, _ := strings.Cut(l.Key, ":"); {
		case l.Key == "client_ip" || l.Key == "route":
		case kind == "header" && isToken(name):
		default:
			d.invalid(lp+".key", nil, "want client_ip, route or header:NAME, got %q", l.Key)
		}
		if l.Rate == "" {
			d.invalid(lp+".rate", nil, "required: a rate like 100/s, 600/m or 10000/h")
		} else if n, _, _ := strings.Cut(strings.TrimSpace(l.Rate), "/"); !rateSyntax.MatchString(l.Rate) || strings.Trim(n, "0 ") == "" {
			d.invalid(lp+".rate", nil, "want a whole number of requests, at least 1, per s, m or h, like 100/s, got %q", l.Rate)
		} else if v, err := strconv.Atoi(strings.TrimSpace(n)); err != nil || v > maxRateCount {
			d.invalid(lp+".rate", nil, "%q: the number of requests may be at most %d", l.Rate, maxRateCount)
		}
		if l.Burst < 0 || l.Burst > maxRateCount {
			d.invalid(lp+".burst", nil, "want 0 (the rate's number) up to %d, got %d", maxRateCount, l.Burst)
		}
	}
}

// loopbackAddr reports whether a listening address binds loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// wildcard reports whether host binds every address.
func wildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

// checkAddr checks a listening address and returns its host and port.
func checkAddr(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf(`want host:port like ":8080" or "127.0.0.1:8443", got %q`, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", fmt.Errorf("port %q in %q is not a number from 0 to 65535", port, addr)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validDNSName(host) {
			return "", "", fmt.Errorf("host %q in %q is neither an IP address nor a host name", host, addr)
		}
	}
	return strings.ToLower(host), port, nil
}

func (d *decoder) validateAdmin(c *Config) {
	if c.Admin.TokenFile == "" {
		if _, _, err := checkAddr(c.Admin.Addr); err == nil && c.Admin.Addr != "" && !loopbackAddr(c.Admin.Addr) {
			d.invalid("admin.addr", nil, "%s is not a loopback address: set admin.token_file too, or bind to 127.0.0.1", c.Admin.Addr)
		}
		return
	}
	data, ok := d.readable("admin.token_file", &c.Admin.TokenFile, "token file")
	if ok && strings.TrimSpace(string(data)) == "" {
		d.invalid("admin.token_file", nil, "the token file %s is empty", c.Admin.TokenFile)
	}
}

// resolve makes a path from the configuration absolute, relative to the
// configuration file's directory.
func (d *decoder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// readable resolves the file named at path, stores the absolute path back in
// *p, and reads it. It reports a file that cannot be read.
func (d *decoder) readable(path string, p *string, what string) ([]byte, bool) {
	written := *p
	*p = d.resolve(written)
	data, err := os.ReadFile(*p)
	if err == nil {
		return data, true
	}
	var where string
	if !filepath.IsAbs(written) {
		where = fmt.Sprintf(" (relative paths are resolved against %s)", d.dir)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		d.invalid(path, err, "cannot read %s %s: %v%s", what, *p, pe.Err, where)
	} else {
		d.invalid(path, err, "cannot read %s %s: %v%s", what, *p, err, where)
	}
	return nil, false
}

func (d *decoder) validateRoutes(c *Config, pools map[string]*Upstream) {
	if len(c.Routes) == 0 {
		d.invalid("routes", nil, "at least one route is required")
	}
	names := make([]string, len(c.Upstreams))
	for i, u := range c.Upstreams {
		names[i] = u.Name
	}
	seen := make(map[string]string)
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		d.validateRateLimits(p, r.RateLimits)
		if rc := r.Cache; rc != nil {
			d.conditions(p+".cache.use_stale", rc.UseStale, staleConditions)
			d.positive(p+".cache.lock_timeout", int64(rc.LockTimeout))
		}
		r.Match.Host = strings.ToLower(r.Match.Host)
		if r.Match.Host != "" {
			if err := checkHost(r.Match.Host); err != nil {
				d.invalid(p+".match.host", err, "%v", err)
			}
		}
		if !strings.HasPrefix(r.Match.PathPrefix, "/") {
			d.invalid(p+".match.path_prefix", nil, "want a path starting with /, got %q", r.Match.PathPrefix)
		}
		key := r.Match.Host + " " + r.Match.PathPrefix
		if prev, dup := seen[key]; dup {
			d.invalid(p+".match", nil, "same host and path_prefix as %s: one of them can never match", d.where(prev))
		} else {
			seen[key] = p
		}
		switch {
		case r.Upstream == "":
			d.invalid(p+".upstream", nil, "required: want the name of a pool under upstreams%s", choices("", names, "defined"))
		case pools[r.Upstream] == nil && !d.decodeFailed("upstreams"):
			d.invalid(p+".upstream", nil, "unknown upstream %q%s", r.Upstream, choices(r.Upstream, names, "defined"))
		}
		if r.ErrorPages.HTML != "" {
			d.template(p+".error_pages.html", &r.ErrorPages.HTML)
		}
		if r.ErrorPages.JSON != "" {
			d.template(p+".error_pages.json", &r.ErrorPages.JSON)
		}
	}
}

// template checks that an error page template can be read and parsed.
func (d *decoder) template(path string, p *string) {
	data, ok := d.readable(path, p, "template")
	if !ok {
		return
	}
	if _, err := template.New(filepath.Base(*p)).Parse(string(data)); err != nil {
		d.invalid(path, err, "invalid template: %v", err)
	}
}

// checkHost checks a route's host: a host name, "*." and a host name, or an
// IP address.
func checkHost(h string) error {
	if _, port, err := net.SplitHostPort(h); err == nil && port != "" {
		return fmt.Errorf("host %q has a port: hosts are matched without one", h)
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(h, "*."); ok {
		if validDNSName(name) {
			return nil
		}
	} else if validDNSName(h) {
		return nil
	}
	return fmt.Errorf(`want a host name like "api.example.com" or "*.example.com", got %q`, h)
}

// validDNSName reports whether s is a host name: dot-separated labels of
// letters, digits, '-' and '_', none longer than 63 bytes, none starting or
// ending with '-'.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (d *decoder) validateUpstream(u *Upstream) {
	p := "upstreams." + u.Name
	if !poolName.MatchString(u.Name) {
		d.invalid(p, nil, "pool name %q: want letters, digits, '_', '-' and '.', starting with a letter or digit", u.Name)
	}
	switch {
	case u.Discover != nil && len(u.Servers) > 0:
		d.invalid(p+".discover", nil, "servers and discover exclude each other: the pool's servers come from one or the other")
	case u.Discover != nil:
		d.validateDiscover(p+".discover", u.Discover)
	case len(u.Servers) == 0:
		d.invalid(p+".servers", nil, "at least one server is required (or discover, to find them in DNS)")
	}
	primaries := 0
	urls := make(map[string]string)
	for i := range u.Servers {
		s := &u.Servers[i]
		sp := fmt.Sprintf("%s.servers[%d]", p, i)
		if !s.Backup {
			primaries++
		}
		if norm, err := checkServerURL(s.URL); err != nil {
			d.invalid(sp+".url", err, "%v", err)
		} else if prev, dup := urls[norm]; dup {
			d.invalid(sp+".url", nil, "%s is already in this pool at %s", s.URL, d.where(prev))
		} else {
			urls[norm] = sp
		}
		if s.Weight < 1 || s.Weight > maxWeight {
			d.invalid(sp+".weight", nil, "want a whole number from 1 to %d, got %d", maxWeight, s.Weight)
		}
		if s.MaxFails != nil && *s.MaxFails < 0 {
			d.invalid(sp+".max_fails", nil, "want 0 (never eject) or more, got %d", *s.MaxFails)
		}
		if s.MaxFails != nil && *s.MaxFails > 0 && s.FailTimeout <= 0 {
			d.invalid(sp+".fail_timeout", nil, "must be more than 0 when max_fails is more than 0")
		}
	}
	if len(u.Servers) > 0 && primaries == 0 {
		d.invalid(p+".servers", nil, "every server is a backup: at least one must not be")
	}

	if !slices.Contains(balancePolicies, u.Balance) {
		d.invalid(p+".balance", nil, "unknown policy %q%s", u.Balance, choices(u.Balance, balancePolicies, "valid"))
	}
	if err := checkHash(u.Hash); err != nil {
		d.invalid(p+".hash", err, "%v", err)
	} else if _, set := d.nodes[p+".hash"]; set && u.Balance != "hash" {
		d.invalid(p+".hash", nil, "hash applies only to balance: hash, and balance is %s", u.Balance)
	}

	d.positive(p+".timeouts.connect", int64(u.Timeouts.Connect))
	d.positive(p+".timeouts.send", int64(u.Timeouts.Send))
	d.positive(p+".timeouts.read", int64(u.Timeouts.Read))
	d.positive(p+".timeouts.idle", int64(u.Timeouts.Idle))

	r := &u.Retry
	d.conditions(p+".retry.on", r.On, retryConditions)
	if r.Tries < 1 || r.Tries > maxTries {
		d.invalid(p+".retry.tries", nil, "want a whole number from 1 (no retries) to %d, got %d", maxTries, r.Tries)
	}
	if r.BackoffMax < r.Backoff {
		if _, set := d.nodes[p+".retry.backoff_max"]; set {
			d.invalid(p+".retry.backoff_max", nil, "%s is less than backoff (%s)", formatDuration(r.BackoffMax), formatDuration(r.Backoff))
		} else {
			d.invalid(p+".retry.backoff", nil, "%s is more than backoff_max (%s by default): set backoff_max too", formatDuration(r.Backoff), formatDuration(r.BackoffMax))
		}
	}

	d.conditions(p+".passive.fail_on", u.Passive.FailOn, failConditions)
	d.positive(p+".passive.max_ejection_time", int64(u.Passive.MaxEjectionTime))

	h := &u.Health
	hp := p + ".health"
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		d.invalid(hp+".path", nil, "want a path starting with /, got %q", h.Path)
	}
	d.positive(hp+".interval", int64(h.Interval))
	d.positive(hp+".timeout", int64(h.Timeout))
	if !isToken(h.Method) || strings.ToUpper(h.Method) != h.Method {
		d.invalid(hp+".method", nil, "want an HTTP method in capitals like GET or HEAD, got %q", h.Method)
	}
	if _, _, err := ParseStatusRange(h.Status); err != nil {
		d.invalid(hp+".status", err, "%v", err)
	}
	if h.Body != "" {
		if _, err := regexp.Compile(h.Body); err != nil {
			d.invalid(hp+".body", err, "want a regular expression: %v", err)
		}
	}
	if h.Rise < 1 {
		d.invalid(hp+".rise", nil, "want 1 or more, got %d", h.Rise)
	}
	if h.Fall < 1 {
		d.invalid(hp+".fall", nil, "want 1 or more, got %d", h.Fall)
	}
	if h.Host != "" && !validHostHeader(h.Host) {
		d.invalid(hp+".host", nil, "want a host name or address, with an optional port, got %q", h.Host)
	}
	for name, val := range h.Headers {
		switch {
		case !isToken(name):
			d.invalid(hp+".headers."+name, nil, "%q is not a valid header name", name)
		case strings.EqualFold(name, "Host"):
			d.invalid(hp+".headers."+name, nil, "set the Host header with health.host")
		case strings.ContainsAny(val, "\r\n\x00"):
			d.invalid(hp+".headers."+name, nil, "a header value cannot hold CR, LF or NUL")
		}
	}
	if h.SlowStart < 0 {
		d.invalid(hp+".slow_start", nil, "want 0 (off) or a duration like 30s, got %s", formatDuration(h.SlowStart))
	}
	if h.Mandatory && h.Path == "" {
		d.invalid(hp+".mandatory", nil, "mandatory needs active checks: set health.path")
	}
	if b := u.Breaker; b != nil {
		bp := p + ".breaker"
		if b.ErrorRatio <= 0 || b.ErrorRatio >= 1 {
			d.invalid(bp+".error_ratio", nil, "want a fraction between 0 and 1 like 0.5, got %v", b.ErrorRatio)
		}
		if b.MinRequests < 1 {
			d.invalid(bp+".min_requests", nil, "want 1 or more, got %d", b.MinRequests)
		}
		d.positive(bp+".window", int64(b.Window))
		d.positive(bp+".open_for", int64(b.OpenFor))
		if b.MaxOpenFor < b.OpenFor {
			d.invalid(bp+".max_open_for", nil, "%s is less than open_for (%s)", formatDuration(b.MaxOpenFor), formatDuration(b.OpenFor))
		}
		if b.HalfOpenRequests < 1 {
			d.invalid(bp+".half_open_requests", nil, "want 1 or more, got %d", b.HalfOpenRequests)
		}
	}
	if q := u.Queue; q != nil {
		if q.Size < 1 {
			d.invalid(p+".queue.size", nil, "want 1 or more, got %d", q.Size)
		}
		d.positive(p+".queue.timeout", int64(q.Timeout))
	}
	if a := u.Adaptive; a != nil {
		if a.MinLimit < 1 {
			d.invalid(p+".adaptive.min_limit", nil, "want 1 or more, got %d", a.MinLimit)
		}
		if a.MaxLimit < a.MinLimit {
			d.invalid(p+".adaptive.max_limit", nil, "%d is less than min_limit (%d)", a.MaxLimit, a.MinLimit)
		}
	}
	for i := range u.Servers {
		if u.Servers[i].MaxConns < 0 {
			d.invalid(fmt.Sprintf("%s.servers[%d].max_conns", p, i), nil, "want 0 (no cap) or more, got %d", u.Servers[i].MaxConns)
		}
	}
	if u.DNS.Refresh < 0 {
		d.invalid(p+".dns.refresh", nil, "want 0 (resolve at each connection) or a duration like 30s, got %s", formatDuration(u.DNS.Refresh))
	}
}

// validateDiscover checks the SRV discovery of a pool.
func (d *decoder) validateDiscover(p string, ds *Discover) {
	if ds.SRV == "" {
		d.invalid(p+".srv", nil, `required: the SRV name to look up, like "_http._tcp.api.service.consul"`)
	} else if !validDNSName(strings.TrimSuffix(ds.SRV, ".")) {
		d.invalid(p+".srv", nil, "%q is not a DNS name", ds.SRV)
	}
	d.positive(p+".refresh", int64(ds.Refresh))
	if ds.Scheme != "http" && ds.Scheme != "https" {
		d.invalid(p+".scheme", nil, "want http or https, got %q", ds.Scheme)
	}
	if mf := ds.Server.MaxFails; mf != nil && *mf < 0 {
		d.invalid(p+".server.max_fails", nil, "want 0 (never eject) or more, got %d", *mf)
	}
	if mf := ds.Server.MaxFails; mf != nil && *mf > 0 && ds.Server.FailTimeout <= 0 {
		d.invalid(p+".server.fail_timeout", nil, "must be more than 0 when max_fails is more than 0")
	}
}

// validHostHeader reports whether s can be a Host header: a host name or
// IP address (IPv6 in brackets), with an optional port.
func validHostHeader(s string) bool {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
		host = h
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return validDNSName(host)
}

// conditions checks a list of retry or failure conditions.
func (d *decoder) conditions(path string, list, valid []string) {
	for i, c := range list {
		ip := fmt.Sprintf("%s[%d]", path, i)
		if !slices.Contains(valid, c) {
			d.invalid(ip, nil, "unknown condition %q%s", c, choices(c, valid, "valid"))
		} else if j := slices.Index(list, c); j < i {
			d.invalid(ip, nil, "%s is listed twice", c)
		}
	}
}

// checkServerURL checks a server's URL and returns it normalised (scheme,
// lower-case host and explicit port) for duplicate detection.
func checkServerURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("required: want a URL like http://10.0.0.7:8080")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("want a URL like http://10.0.0.7:8080: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if u.Opaque != "" || u.Host == "" || (scheme != "http" && scheme != "https") {
		if scheme != "" && scheme != "http" && scheme != "https" && u.Host != "" {
			return "", fmt.Errorf("scheme %q is not supported: want http or https", u.Scheme)
		}
		return "", fmt.Errorf("want a URL with scheme and host like http://10.0.0.7:8080, got %q", raw)
	}
	if u.User != nil {
		return "", errors.New("credentials in a server URL are not supported")
	}
	if u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("a server URL cannot have a path (%q): the client's path is sent as is (see the route's strip_prefix)", u.Path)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", errors.New("a server URL cannot have a query")
	}
	if u.Fragment != "" {
		return "", errors.New("a server URL cannot have a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("want a URL with a host like http://10.0.0.7:8080, got %q", raw)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validDNSName(host) {
		return "", fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	port := u.Port()
	switch {
	case port == "" && scheme == "http":
		port = "80"
	case port == "" && scheme == "https":
		port = "443"
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(host), port), nil
}

// checkHash checks the key of the hash policy.
func checkHash(h string) error {
	if h == "client_ip" {
		return nil
	}
	kind, name, ok := strings.Cut(h, ":")
	if ok && (kind == "header" || kind == "cookie") && isToken(name) {
		return nil
	}
	return fmt.Errorf("want client_ip, header:NAME or cookie:NAME, got %q", h)
}

// isToken reports whether s is an RFC 9110 token, as header names, cookie
// names and methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// normaliseCIDR turns an address or prefix into canonical CIDR form:
// "10.0.0.1" becomes "10.0.0.1/32", "10.1.2.3/8" becomes "10.0.0.0/8".
func normaliseCIDR(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("want an IP address or a CIDR like 10.0.0.0/8, got %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("want an IP address or a CIDR like 10.0.0.0/8, got %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}
