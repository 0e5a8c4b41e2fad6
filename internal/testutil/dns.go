package testutil

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a fake DNS server on UDP loopback with a fixed zone: the resolver
// behind an upstream's name, which can fail (NXDOMAIN) or fall silent
// without touching the system resolver. Its methods are safe for concurrent
// use.
type DNS struct {
	// Addr is the host:port it listens on (UDP).
	Addr string
	// Queries counts queries received, answered or not.
	Queries atomic.Int64

	mu      sync.Mutex
	records map[string][]netip.Addr // by normalised name
	srv     map[string][]SRV        // by normalised name
	silent  map[string]bool
}

// SRV is one SRV record of the fake server's zone.
type SRV struct {
	Target                 string
	Port, Priority, Weight uint16
}

// NewDNS starts a DNS server that answers A and AAAA queries for the names
// in records (and SRV queries for names given SRV records with
// [DNS.SetSRV]) (values are IP addresses, such as "127.0.0.1" or "::1"; a
// name's A answer holds its IPv4 values and its AAAA answer its IPv6
// values), answers NXDOMAIN for every other name, and does not answer at
// all for names passed to [DNS.Silence]. Names match without regard to case
// or a trailing dot.
func NewDNS(t testing.TB, records map[string][]string) *DNS {
	t.Helper()
	d := &DNS{records: map[string][]netip.Addr{}, srv: map[string][]SRV{}, silent: map[string]bool{}}
	for name, ips := range records {
		d.Set(t, name, ips...)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: NewDNS: listen: %v", err)
	}
	d.Addr = pc.LocalAddr().String()
	var wg sync.WaitGroup
	wg.Go(func() { d.serve(pc) })
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return d
}

// Set replaces the addresses of name (A and AAAA) from now on; with none,
// name has no address records (an empty answer, not NXDOMAIN).
func (d *DNS) Set(t testing.TB, name string, ips ...string) {
	t.Helper()
	addrs := []netip.Addr{}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			t.Fatalf("testutil: DNS.Set: %s: %v", name, err)
		}
		addrs = append(addrs, a.Unmap())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[normName(name)] = addrs
}

// SetSRV replaces the SRV records of name from now on.
func (d *DNS) SetSRV(name string, recs ...SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[normName(name)] = append([]SRV(nil), recs...)
}

// Silence makes the server ignore every query for name from now on, so that
// a lookup waits until its timeout.
func (d *DNS) Silence(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.silent[normName(name)] = true
}

// Resolver returns a resolver that sends every query to this server and
// never to the system's, whatever /etc/resolv.conf says. It still consults
// /etc/hosts, so use names that file does not hold (under .test, say), and
// its errors still name the nameserver from /etc/resolv.conf ("lookup x.test
// on 10.0.0.53:53: no such host") although the query came here.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", d.Addr)
		},
	}
}

func normName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (d *DNS) serve(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		d.Queries.Add(1)
		if resp, ok := d.answer(buf[:n]); ok {
			pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query; ok is false when the query
// should get no answer (silenced, or not a parseable query).
func (d *DNS) answer(query []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := normName(q.Name.String())
	d.mu.Lock()
	silent := d.silent[name]
	addrs, known := d.records[name]
	srvs, isSRV := d.srv[name]
	d.mu.Unlock()
	if silent {
		return nil, false
	}
	known = known || isSRV
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	for _, r := range srvs {
		if q.Type != dnsmessage.TypeSRV {
			break
		}
		target, terr := dnsmessage.NewName(strings.TrimSuffix(r.Target, ".") + ".")
		if terr != nil {
			return nil, false
		}
		if err = b.SRVResource(rr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}); err != nil {
			return nil, false
		}
	}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, false
		}
	}
	resp, err = b.Finish()
	return resp, err == nil
}
