package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Summary describes a loaded configuration in a few lines, for
// `holdfast check` to print when the file is valid:
//
//	listen :8080 (http), :8443 (https, h2)
//	admin 127.0.0.1:9901 (token for changes)
//	route api.example.com/ -> api
//	pool api: least_conn, 2 servers + 1 backup, tries 3, connect 5s, read 1m, idle 30s, health GET /health every 5s (rise 2, fall 3)
func Summary(c *Config) string {
	var b strings.Builder
	ls := make([]string, len(c.Listen))
	for i, l := range c.Listen {
		switch {
		case l.TLS == nil:
			ls[i] = l.Addr + " (http)"
		case l.HTTP2 == nil || *l.HTTP2:
			ls[i] = l.Addr + " (https, h2)"
		default:
			ls[i] = l.Addr + " (https)"
		}
	}
	fmt.Fprintf(&b, "listen %s\n", strings.Join(ls, ", "))
	if c.Admin.Addr != "" {
		tok := "read only: no token_file"
		if c.Admin.TokenFile != "" {
			tok = "token for changes"
		}
		fmt.Fprintf(&b, "admin %s (%s)\n", c.Admin.Addr, tok)
	}
	for _, r := range c.Routes {
		host := r.Match.Host
		if host == "" {
			host = "*"
		}
		var extra string
		if r.StripPrefix {
			extra = " (strip prefix)"
		}
		fmt.Fprintf(&b, "route %s%s -> %s%s\n", host, r.Match.PathPrefix, r.Upstream, extra)
	}
	for _, u := range c.Upstreams {
		primaries := 0
		for _, s := range u.Servers {
			if !s.Backup {
				primaries++
			}
		}
		policy := u.Balance
		if policy == "hash" {
			policy += " " + u.Hash
		}
		if d := u.Discover; d != nil {
			fmt.Fprintf(&b, "pool %s: %s, servers from SRV %s every %s", u.Name, policy, d.SRV, formatDuration(d.Refresh))
		} else {
			fmt.Fprintf(&b, "pool %s: %s, %s", u.Name, policy, plural(primaries, "server"))
		}
		if backups := len(u.Servers) - primaries; backups > 0 {
			fmt.Fprintf(&b, " + %d backup", backups)
		}
		if len(u.Retry.On) == 0 || u.Retry.Tries == 1 {
			b.WriteString(", no retries")
		} else {
			fmt.Fprintf(&b, ", tries %d", u.Retry.Tries)
		}
		t := u.Timeouts
		fmt.Fprintf(&b, ", connect %s, read %s, idle %s",
			formatDuration(t.Connect), formatDuration(t.Read), formatDuration(t.Idle))
		if u.Health.Path != "" {
			fmt.Fprintf(&b, ", health %s %s every %s (rise %d, fall %d)", u.Health.Method, u.Health.Path, formatDuration(u.Health.Interval), u.Health.Rise, u.Health.Fall)
		}
		if u.Health.SlowStart > 0 {
			fmt.Fprintf(&b, ", slow start %s", formatDuration(u.Health.SlowStart))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func plural(n int, word string) string {
	s := strconv.Itoa(n) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}
