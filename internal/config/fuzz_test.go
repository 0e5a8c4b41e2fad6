package config

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that it fails only with an
// *Errors whose problems all say something, and that what it accepts is a
// configuration the gateway can run: a listener, routes whose pools exist,
// pools with a primary server. Inputs it found are kept in testdata/fuzz.
func FuzzParse(f *testing.F) {
	seeds := []string{
		specExample,
		minimal,
		"",
		"{}",
		"listen: [{addr: \":1\", tls: {cert: cert.pem, key: key.pem}}]\nroutes: [{upstream: a}]\nupstreams: {a: {servers: [{url: \"http://x:1\"}]}}\n",
		"routes: [{upstream: a}]\nupstreams:\n  a: &p {servers: [{url: \"http://x:1\"}], retry: {on: []}}\n  b: {<<: *p, balance: hash, hash: \"cookie:s\"}\n",
		"routes: [{upstream: a, match: {host: \"*.example.com\", path_prefix: /x}}]\nupstreams: {a: {servers: [{url: \"https://[::1]\", backup: false}], passive: {max_ejected_percent: 10%}}}\ntrusted_proxies: [10.0.0.0/8]\n",
		"routes: [{upstream: a}]\nupstreams: {a: {servers: [{url: \"http://x:1\", weight: 0}]}}\n",
		"a: &x [*x]\n",
		"x: &x {<<: *x}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// The files the seeds name exist, so that fuzzing reaches past them.
	file := filepath.Join(filepath.Dir(writeConfig(f, "")), "holdfast.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, file)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("Parse error %v (%T) is not a non-empty *Errors", err, err)
			}
			for _, e := range errs.List {
				if e.Msg == "" || e.Line < 0 || e.Col < 0 {
					t.Fatalf("bad error %+v", e)
				}
			}
			if c != nil {
				t.Fatal("Parse returned a Config with an error")
			}
			return
		}
		if len(c.Listen) == 0 {
			t.Fatal("accepted a configuration without a listener")
		}
		pools := make(map[string]*Upstream)
		for _, u := range c.Upstreams {
			pools[u.Name] = u
			primary := false
			for _, s := range u.Servers {
				primary = primary || !s.Backup
				if s.Weight < 1 || s.MaxFails == nil {
					t.Fatalf("accepted server %+v", s)
				}
			}
			if !primary {
				t.Fatalf("accepted pool %s without a primary server", u.Name)
			}
			if u.Retry.Tries < 1 || u.Retry.Tries > maxTries || u.Timeouts.Connect <= 0 {
				t.Fatalf("accepted pool %+v", u)
			}
		}
		for _, r := range c.Routes {
			if pools[r.Upstream] == nil {
				t.Fatalf("accepted route to unknown upstream %q", r.Upstream)
			}
		}
		_ = Summary(c)
	})
}
