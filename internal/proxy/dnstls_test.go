package proxy

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

func TestDNSFailure(t *testing.T) {
	good := testutil.Backend(t, nil)
	_, port, _ := strings.Cut(good.Addr, ":")
	dns := testutil.NewDNS(t, map[string][]string{"good.test": {"127.0.0.1"}})
	dns.Silence("silent.test")
	withDNS := func(o *Options) { o.Transports = &Transports{Resolver: dns.Resolver()} }

	t.Run("nxdomain", func(t *testing.T) {
		e := newEnv(t, poolConfig("", "http://missing.test:"+port), withDNS)
		r := e.do("GET", "/", "")
		wantStatus(t, r, 502)
		if got := r.proxyCause(); got != "dns_error" {
			t.Errorf("cause = %q, want dns_error", got)
		}
	})
	t.Run("resolver silent", func(t *testing.T) {
		e := newEnv(t, poolConfig("timeouts: {connect: 300ms}\nretry: {tries: 1}", "http://silent.test:"+port), withDNS)
		r := e.do("GET", "/", "")
		wantStatus(t, r, 504)
		if got := r.proxyCause(); got != "dns_timeout" {
			t.Errorf("cause = %q, want dns_timeout", got)
		}
	})
	t.Run("POST fails over: never sent", func(t *testing.T) {
		e := newEnv(t, poolConfig("balance: round_robin", "http://missing.test:"+port, "http://good.test:"+port), withDNS)
		before := good.Requests.Load()
		for i := 0; i < 4; i++ {
			wantStatus(t, e.do("POST", "/", "body"), 200)
		}
		if got := good.Requests.Load() - before; got != 4 {
			t.Errorf("good backend got %d POSTs, want 4", got)
		}
	})
}

func TestUpstreamTLSFailures(t *testing.T) {
	cases := []struct {
		kind   testutil.TLSKind
		detail string // what the log says, to tell the three apart
	}{
		{testutil.TLSExpired, "expired"},
		{testutil.TLSWrongName, "IP SANs"},
		{testutil.TLSUnknownAuthority, "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			b := testutil.NewTLSBackend(t, tc.kind, nil)
			e := newEnv(t, poolConfig("", b.URL), func(o *Options) {
				o.Transports = &Transports{TLSConfig: &tls.Config{RootCAs: b.Roots}}
			})
			r := e.do("GET", "/", "")
			wantStatus(t, r, 502)
			if got := r.proxyCause(); got != "tls_certificate_error" {
				t.Errorf("cause = %q, want tls_certificate_error", got)
			}
			if b.Requests.Load() != 0 {
				t.Errorf("backend handled %d requests through a rejected certificate", b.Requests.Load())
			}
			if !strings.Contains(e.logBuf.String(), tc.detail) {
				t.Errorf("access log does not say %q:\n%s", tc.detail, e.logBuf.String())
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		b := testutil.NewTLSBackend(t, testutil.TLSValid, nil)
		e := newEnv(t, poolConfig("", b.URL), func(o *Options) {
			o.Transports = &Transports{TLSConfig: &tls.Config{RootCAs: b.Roots}}
		})
		wantStatus(t, e.do("GET", "/", ""), 200)
	})
	t.Run("plain HTTP behind an https URL", func(t *testing.T) {
		plain := testutil.Backend(t, nil)
		e := newEnv(t, poolConfig("", "https://"+plain.Addr))
		r := e.do("GET", "/", "")
		wantStatus(t, r, 502)
		if got := r.proxyCause(); got != "tls_protocol_error" {
			t.Errorf("cause = %q, want tls_protocol_error", got)
		}
	})
	t.Run("client certificate required", func(t *testing.T) {
		b := testutil.TLSRequireClientCert(t)
		e := newEnv(t, poolConfig("retry: {tries: 1}", b.URL), func(o *Options) {
			o.Transports = &Transports{TLSConfig: &tls.Config{RootCAs: b.Roots}}
		})
		r := e.do("GET", "/", "")
		wantStatus(t, r, 502)
		if got := r.proxyCause(); got != "tls_alert_received" {
			t.Errorf("cause = %q, want tls_alert_received", got)
		}
	})
}
