package cause_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/testutil"
)

type tracker struct{ p atomic.Uint32 }

func (tr *tracker) reach(p cause.Phase) {
	for {
		old := tr.p.Load()
		if uint32(p) <= old || tr.p.CompareAndSwap(old, uint32(p)) {
			return
		}
	}
}

func exploreDo(ctx context.Context, rt http.RoundTripper, method, url string) (error, cause.Phase) {
	var tr tracker
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { tr.reach(cause.PhaseResolve) },
		ConnectStart:      func(string, string) { tr.reach(cause.PhaseConnect) },
		TLSHandshakeStart: func() { tr.reach(cause.PhaseTLS) },
		GotConn:           func(httptrace.GotConnInfo) { tr.reach(cause.PhaseWrite) },
		WroteRequest:      func(httptrace.WroteRequestInfo) { tr.reach(cause.PhaseWait) },
	})
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err, cause.Phase(tr.p.Load())
	}
	tr.reach(cause.PhaseRead)
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err, cause.Phase(tr.p.Load())
	}
	return fmt.Errorf("no error, status %d", resp.StatusCode), cause.PhaseDone
}

func TestExplore(t *testing.T) {
	base := func() *http.Transport {
		return &http.Transport{DialContext: (&net.Dialer{Timeout: 300 * time.Millisecond}).DialContext, ResponseHeaderTimeout: 300 * time.Millisecond, MaxResponseHeaderBytes: 64 << 10, TLSHandshakeTimeout: 500 * time.Millisecond}
	}
	show := func(name string, err error, p cause.Phase) {
		t.Logf("%-20s phase=%-7s cause=%-25s err=%T %v", name, p, cause.Classify(err, p), err, err)
	}
	ctx := context.Background()
	err, p := exploreDo(ctx, base(), "GET", "http://"+testutil.DeadAddr(t)+"/")
	show("dead", err, p)
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.Hang(t).Addr+"/")
	show("hang", err, p)
	start := time.Now()
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.NoAccept(t)+"/")
	show("noaccept", err, p)
	t.Log(time.Since(start))
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.ResetAfterRequest(t).Addr+"/")
	show("reset", err, p)
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.CloseAfterRequest(t).Addr+"/")
	show("close", err, p)
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.Garbage(t).Addr+"/")
	show("garbage", err, p)
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.BigHeader(t, 100<<10).Addr+"/")
	show("bigheader", err, p)
	err, p = exploreDo(ctx, base(), "GET", "http://"+testutil.ResetMidBody(t).Addr+"/")
	show("midbody", err, p)
	for _, k := range []testutil.TLSKind{testutil.TLSValid, testutil.TLSExpired, testutil.TLSWrongName, testutil.TLSUnknownAuthority} {
		b := testutil.NewTLSBackend(t, k, nil)
		tr := base()
		tr.TLSClientConfig = b.ClientConfig()
		err, p = exploreDo(ctx, tr, "GET", b.URL)
		show(k.String(), err, p)
		err, p = exploreDo(ctx, base(), "GET", "http://"+b.Addr)
		show("plain->tls", err, p)
	}
	mb := testutil.TLSRequireClientCert(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		tr := base()
		tr.TLSClientConfig = mb.ClientConfig()
		tr.TLSClientConfig.MaxVersion = v
		err, p = exploreDo(ctx, tr, "GET", mb.URL)
		show("mtls", err, p)
	}
	cb := testutil.Backend(t, nil)
	tr := base()
	err, p = exploreDo(ctx, tr, "GET", "https://"+cb.Addr)
	show("tls->plain", err, p)
	err, p = exploreDo(ctx, clientRT{&http.Client{Transport: base()}}, "GET", "https://"+cb.Addr)
	show("tls->plain client", err, p)
	err, p = exploreDo(ctx, tr, "GET", "https://"+testutil.Garbage(t).Addr)
	show("tls->garbage", err, p)
	err, p = exploreDo(ctx, tr, "GET", "https://"+testutil.CloseAfterRequest(t).Addr)
	show("tls->close", err, p)

	dns := testutil.NewDNS(t, map[string][]string{"up.test": {"127.0.0.1"}})
	dns.Silence("silent.test")
	dtr := base()
	dtr.DialContext = (&net.Dialer{Timeout: 300 * time.Millisecond, Resolver: dns.Resolver()}).DialContext
	err, p = exploreDo(ctx, dtr, "GET", "http://up.test:"+cb.URL[len("http://127.0.0.1:"):])
	show("dns ok", err, p)
	err, p = exploreDo(ctx, dtr, "GET", "http://nx.test/")
	show("nxdomain", err, p)
	err, p = exploreDo(ctx, dtr, "GET", "http://silent.test/")
	show("silent", err, p)
	t.Log("queries", dns.Queries.Load())
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	err, p = exploreDo(cctx, base(), "GET", "http://"+testutil.Hang(t).Addr+"/")
	show("canceled", err, p)
	cctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err, p = exploreDo(cctx, base(), "GET", "http://"+testutil.Hang(t).Addr+"/")
	show("ctx deadline", err, p)
	err, p = exploreDo(ctx, clientRT{&http.Client{Transport: base()}}, "GET", "http://"+testutil.ResetMidBody(t).Addr+"/")
	show("midbody client", err, p)
}

type clientRT struct{ *http.Client }

func (c clientRT) RoundTrip(r *http.Request) (*http.Response, error) { return c.Do(r) }

func TestExplore2(t *testing.T) {
	show := func(name string, err error, p cause.Phase) {
		t.Logf("%-20s phase=%-7s cause=%-25s err=%T %v", name, p, cause.Classify(err, p), err, err)
	}
	b := testutil.NewTLSBackend(t, testutil.TLSValid, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Log("proto", r.Proto)
		if r.URL.Path == "/big" {
			w.Header().Set("X-Big", string(make([]byte, 100<<10)))
		}
		if r.URL.Path == "/abort" {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	}))
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: b.ClientConfig(), ForceAttemptHTTP2: h2, MaxResponseHeaderBytes: 64 << 10}
		err, p := exploreDo(context.Background(), tr, "GET", b.URL+"/big")
		show("big", err, p)
		err, p = exploreDo(context.Background(), tr, "GET", b.URL+"/abort")
		show("abort", err, p)
	}
	for _, raw := range []string{
		"HTTP/1.1 abc OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n",
		"HTTP/1.1 200",
		"",
		"\x15\x03\x03\x00\x02\x02\x28",
	} {
		f := testutil.Raw(t, raw)
		err, p := exploreDo(context.Background(), &http.Transport{}, "GET", "http://"+f.Addr)
		show(fmt.Sprintf("%.30q", raw), err, p)
	}
	f := testutil.Hang(t)
	err, p := exploreDo(context.Background(), &http.Transport{TLSHandshakeTimeout: 200 * time.Millisecond}, "GET", "https://"+f.Addr)
	show("tls hang", err, p)
}
