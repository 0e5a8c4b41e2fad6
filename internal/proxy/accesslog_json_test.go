package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cause"
)

// slogAccessAttrs are the attributes the access log was written with when
// it went through log/slog's JSONHandler. The hand-made encoder must write
// exactly the line slog wrote from them.
func slogAccessAttrs(r *http.Request, x *exchange, routeName, poolName string, d time.Duration) []slog.Attr {
	attrs := make([]slog.Attr, 0, 22)
	attrs = append(attrs,
		slog.String("request_id", x.reqID),
		slog.String("client", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("query", r.URL.RawQuery),
		slog.String("proto", r.Proto),
		slog.String("tls", tlsVersion(r)),
		slog.String("user_agent", r.Header.Get("User-Agent")),
		slog.String("referer", r.Header.Get("Referer")),
		slog.String("route", routeName),
		slog.String("upstream", poolName),
		slog.Int("status", x.status),
		slog.Float64("duration_ms", ms(d)),
		slog.Int64("bytes_in", x.bytesIn),
		slog.Int64("bytes_out", x.bytesOut),
		slog.Int("attempts", len(x.attempts)),
	)
	if x.cause != cause.None {
		attrs = append(attrs, slog.String("cause", x.cause.String()))
		if x.detail != "" {
			attrs = append(attrs, slog.String("detail", x.detail))
		}
	}
	if x.cache.result != "" {
		attrs = append(attrs, slog.String("cache", x.cache.result))
	}
	if x.retrySkipped != "" && x.cause != cause.None {
		attrs = append(attrs, slog.String("retry_skipped", x.retrySkipped))
	}
	if len(x.attempts) > 0 {
		attrs = append(attrs, slog.Any("ledger", append([]attemptRecord(nil), x.attempts...)))
	}
	return attrs
}

// slogLine is the line slog's JSONHandler writes for the request at t.
func slogLine(t testing.TB, at time.Time, r *http.Request, x *exchange, routeName, poolName string, d time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	rec := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	rec.AddAttrs(slogAccessAttrs(r, x, routeName, poolName, d)...)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameLine fails t unless the encoder writes slog's line for the request.
func sameLine(t testing.TB, at time.Time, r *http.Request, x *exchange, routeName, poolName string, d time.Duration) {
	t.Helper()
	want := slogLine(t, at, r, x, routeName, poolName, d)
	got := appendAccessLine(nil, at, r, x, routeName, poolName, d)
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-40, 0)
	t.Errorf("line differs from slog's at byte %d:\n got  …%s\n want …%s", i, clipLine(got[from:]), clipLine(want[from:]))
}

func clipLine(b []byte) string {
	if len(b) > 160 {
		b = b[:160]
	}
	return strconv.Quote(string(b))
}

// logReq is a request as the access log sees it.
func logReq(s string) *http.Request {
	return &http.Request{
		Method:     s,
		Host:       s,
		URL:        &url.URL{Path: s, RawQuery: s},
		Proto:      s,
		RemoteAddr: s,
		Header:     http.Header{"User-Agent": {s}, "Referer": {s}},
	}
}

// hostile are strings that test every escaping rule.
var hostile = func() []string {
	var ctl strings.Builder
	for c := range 0x20 {
		ctl.WriteByte(byte(c))
	}
	ctl.WriteByte(0x7f)
	return []string{
		"",
		"plain ascii /path/to?x=1",
		`say "hi" \ back\\slash \"`,
		ctl.String(),
		"\b\f\n\r\t\v\x00\x1b",
		"bad \xff\xfe utf-8 \xc3",
		"truncated \xe2\x80",
		"surrogate \xed\xa0\x80 overlong \xc0\xaf",
		"line\u2028sep\u2029par",
		"<script>alert('x&y')</script> &amp; <>",
		"日本語 émoji 😀 replacement \ufffd nbsp\u00a0 bom\ufeff",
		"\u0085 next line, \u200b zero width, \U0010ffff",
		strings.Repeat("a\"b\\c\x01é\xff<", 5000),
		strings.Repeat("x", 70<<10),
	}
}()

// ledgerFloats are float64 values of every magnitude and both notations.
var ledgerFloats = []float64{
	0.001, 0.1 + 0.2, 1, 1.5, 12.345, 100, 1234.567, 1e6, 123456789.123,
	1e20, 1e21, 1.5e21, 1e-6, 9.99e-7, 1e-7, 1.234e-9, 5e-324,
	math.MaxFloat64, math.SmallestNonzeroFloat64, -0.5, -1e-7, -1e22,
	math.Copysign(0, -1), 0.000123, 2.5e-5,
}

func TestAccessLogMatchesSlog(t *testing.T) {
	times := []time.Time{
		time.Date(2025, 3, 9, 14, 5, 7, 123456789, time.UTC),
		time.Date(2025, 3, 9, 14, 5, 7, 0, time.UTC),
		time.Date(2025, 3, 9, 14, 5, 7, 120000000, time.FixedZone("", -7*3600)),
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("", 5*3600+45*60)),
		time.Now(),
	}
	durations := []time.Duration{0, time.Microsecond, 999 * time.Nanosecond, 1234567 * time.Microsecond,
		3 * time.Hour, -5 * time.Millisecond, math.MaxInt64, math.MinInt64}
	rec := func(s string) attemptRecord {
		return attemptRecord{Server: s, Phase: cause.PhaseWait, Reused: true, IdleMS: 1.25, Written: true,
			Cause: cause.ConnectionTerminated, Status: 502, Duration: 3.5, WaitMS: 25}
	}
	ledgers := [][]attemptRecord{
		nil,
		{{Server: "http://10.0.0.1:8080", Phase: cause.PhaseRead, Status: 200, Duration: 1.234}},
		{rec("a"), {Server: "b", Phase: cause.PhaseConnect, Cause: cause.ConnectionRefused, Duration: 0.2, WaitMS: 1e-7},
			{Server: "c", Phase: cause.PhaseDone, Reused: true, IdleMS: 1e21, Written: true, Status: 200, Duration: 0}},
		{{}},
		{{Phase: cause.Phase(200), Cause: cause.Cause(200), Status: -1, Duration: math.Copysign(0, -1)}},
	}
	causes := []cause.Cause{cause.None, cause.ConnectionRefused, cause.ClientClosed, cause.Cause(250)}

	n := 0
	for i, s := range hostile {
		r := logReq(s)
		if i%2 == 1 {
			r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
		}
		for j, c := range causes {
			for k, l := range ledgers {
				x := &exchange{reqID: s, status: 200 + j, cause: c, detail: s, retrySkipped: s,
					bytesIn: int64(k) << 40, bytesOut: -int64(i), attempts: l}
				x.cache.result = s
				if k%2 == 0 {
					x.detail, x.retrySkipped, x.cache.result = "", "", ""
				}
				if k == len(ledgers)-1 {
					x.attempts = []attemptRecord{rec(s), rec(s + "2"), rec("")}
				}
				sameLine(t, times[n%len(times)], r, x, s, s, durations[n%len(durations)])
				n++
			}
		}
	}
	// Every combination of ledger fields set and unset.
	r := logReq("GET")
	for mask := range 1 << 9 {
		a := attemptRecord{}
		set := func(bit int) bool { return mask&(1<<bit) != 0 }
		if set(0) {
			a.Server = hostile[n%len(hostile)]
		}
		if set(1) {
			a.Phase = cause.Phase(mask % 9)
		}
		a.Reused = set(2)
		if set(3) {
			a.IdleMS = ledgerFloats[mask%len(ledgerFloats)]
		}
		a.Written = set(4)
		if set(5) {
			a.Cause = cause.Cause(mask % 30)
		}
		if set(6) {
			a.Status = 100 + mask
		}
		if set(7) {
			a.Duration = ledgerFloats[(mask+7)%len(ledgerFloats)]
		}
		if set(8) {
			a.WaitMS = ledgerFloats[(mask+13)%len(ledgerFloats)]
		}
		x := &exchange{reqID: "r", status: 502, cause: cause.ConnectionTerminated, attempts: []attemptRecord{a}}
		sameLine(t, times[0], r, x, "route", "pool", time.Duration(mask)*time.Microsecond)
		n++
	}
	// Floats of every magnitude, in each float field.
	for _, f := range ledgerFloats {
		x := &exchange{reqID: "r", status: 200, attempts: []attemptRecord{{Server: "s", IdleMS: f, Duration: f, WaitMS: f}}}
		sameLine(t, times[0], r, x, "route", "pool", time.Duration(f*1e6))
	}
}

// TestAccessLogFloats: appendFloat writes what encoding/json writes, for
// values of random bits as well as the usual ones.
func TestAccessLogFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := append([]float64(nil), ledgerFloats...)
	for range 100000 {
		values = append(values, math.Float64frombits(rng.Uint64()), rng.Float64()*math.Pow(10, float64(rng.IntN(60)-30)))
	}
	for _, f := range values {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("appendFloat(%b) = %s, encoding/json writes %s", f, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := string(appendFloat(nil, f)); got != "null" {
			t.Errorf("appendFloat(%v) = %s, want null", f, got)
		}
	}
}

// TestAccessLogLedgerFields: appendLedger knows attemptRecord's fields by
// heart. When they change, it must be changed too, and this test with it.
func TestAccessLogLedgerFields(t *testing.T) {
	var got []string
	rt := reflect.TypeFor[attemptRecord]()
	for i := range rt.NumField() {
		if f := rt.Field(i); f.IsExported() {
			got = append(got, f.Name+" "+f.Type.String()+" "+f.Tag.Get("json"))
		}
	}
	want := []string{
		"Server string server",
		"Phase cause.Phase phase",
		"Reused bool reused",
		"IdleMS float64 idle_ms,omitempty",
		"Written bool written",
		"Cause cause.Cause cause,omitempty",
		"Status int status,omitempty",
		"Duration float64 duration_ms",
		"WaitMS float64 wait_ms,omitempty",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attemptRecord's fields changed; update appendLedger, then this list:\n got  %q\n want %q", got, want)
	}
	// encoding/json wrote Phase and Cause through MarshalText; a
	// MarshalJSON would take precedence and change the ledger.
	marshaler := reflect.TypeFor[json.Marshaler]()
	for _, typ := range []reflect.Type{reflect.TypeFor[cause.Phase](), reflect.TypeFor[cause.Cause](), rt} {
		if typ.Implements(marshaler) || reflect.PointerTo(typ).Implements(marshaler) {
			t.Errorf("%v has a MarshalJSON method; appendLedger does not call it", typ)
		}
	}
}

func FuzzAccessLogLine(f *testing.F) {
	for i, s := range hostile[:len(hostile)-2] {
		f.Add(s, hostile[(i+3)%(len(hostile)-2)], s, ledgerFloats[i%len(ledgerFloats)], int64(i)*1234567)
	}
	at := time.Date(2025, 3, 9, 14, 5, 7, 123456789, time.UTC)
	f.Fuzz(func(t *testing.T, path, ua, server string, ms float64, d int64) {
		if math.IsNaN(ms) || math.IsInf(ms, 0) {
			t.Skip("encoding/json refuses NaN and infinities")
		}
		r := logReq("GET")
		r.URL.Path = path
		r.Header.Set("User-Agent", ua)
		x := &exchange{reqID: ua, status: 502, cause: cause.HTTPResponseTimeout, detail: path,
			attempts: []attemptRecord{{Server: server, Phase: cause.PhaseWait, IdleMS: ms, Duration: ms, WaitMS: -ms}}}
		sameLine(t, at, r, x, server, path, time.Duration(d))
	})
}

// TestAccessLogNoAllocs: encoding a line into a buffer of room enough
// allocates nothing.
func TestAccessLogNoAllocs(t *testing.T) {
	r, x := benchLogged(3)
	buf := make([]byte, 0, 4096)
	at := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		buf = appendAccessLine(buf[:0], at, r, x, "api", "backend", 1234*time.Microsecond)
	}); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
}

// serialWriter is an io.Writer that is not safe for concurrent use, and
// tells when it is used so.
type serialWriter struct {
	busy    atomic.Int32
	overlap atomic.Bool
	buf     bytes.Buffer
}

func (w *serialWriter) Write(p []byte) (int, error) {
	if w.busy.Add(1) != 1 {
		w.overlap.Store(true)
	}
	defer w.busy.Add(-1)
	n := len(p)
	// Write in pieces, so that an interleaving would show in the output.
	for len(p) > 0 {
		k := min(len(p), 7)
		w.buf.Write(p[:k])
		p = p[k:]
		time.Sleep(0)
	}
	return n, nil
}

// TestAccessLogConcurrent: lines logged at once come out whole, each one
// Write, none interleaved.
func TestAccessLogConcurrent(t *testing.T) {
	w := new(serialWriter)
	l := NewAccessLog(w)
	const goroutines, each = 16, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := logReq("GET")
				r.URL.Path = "/" + strings.Repeat("p", (g*each+i)%300)
				x := &exchange{reqID: fmt.Sprintf("%d-%d", g, i), status: 200,
					attempts: []attemptRecord{{Server: "s", Phase: cause.PhaseRead, Status: 200, Duration: float64(i)}}}
				l.write(r, x, "route", "pool", time.Duration(i)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	if w.overlap.Load() {
		t.Error("the writer was called concurrently")
	}
	out := w.buf.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatal("output does not end with a newline")
	}
	seen := make(map[string]bool)
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line is not JSON (%v): %.200s", err, line)
		}
		id, _ := m["request_id"].(string)
		if seen[id] {
			t.Errorf("request %s logged twice", id)
		}
		seen[id] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d lines, want %d", len(seen), goroutines*each)
	}
}

// benchLogged is a typical request and exchange with n attempts (the
// first n-1 failed).
func benchLogged(n int) (*http.Request, *exchange) {
	r := &http.Request{
		Method:     "GET",
		Host:       "api.example.com",
		URL:        &url.URL{Path: "/v1/users/12345/orders", RawQuery: "page=2&limit=50"},
		Proto:      "HTTP/1.1",
		RemoteAddr: "203.0.113.7:52144",
		Header: http.Header{
			"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
			"Referer":    {"https://www.example.com/account/orders"},
		},
		TLS: &tls.ConnectionState{Version: tls.VersionTLS13},
	}
	x := &exchange{reqID: "01J9ZK4Q7R8S2T3V4W5X6Y7Z8A", status: 200, bytesIn: 0, bytesOut: 5321}
	for i := range n - 1 {
		x.attempts = append(x.attempts, attemptRecord{Server: "10.0.0." + strconv.Itoa(i+1) + ":8080", Phase: cause.PhaseWait,
			Reused: true, IdleMS: 1523.042, Written: true, Cause: cause.ConnectionTerminated, Duration: 0.412, WaitMS: float64(i) * 25})
	}
	x.attempts = append(x.attempts, attemptRecord{Server: "10.0.0.9:8080", Phase: cause.PhaseRead, Reused: true,
		IdleMS: 12.5, Written: true, Status: 200, Duration: 1.234})
	return r, x
}

// BenchmarkAccessLogLine compares the access log through log/slog, as it
// was, with the hand-made encoder, both writing to io.Discard: one attempt
// (the common case) and three (two retries).
func BenchmarkAccessLogLine(b *testing.B) {
	for _, n := range []int{1, 3} {
		r, x := benchLogged(n)
		d := 1234 * time.Microsecond
		b.Run(fmt.Sprintf("slog/attempts=%d", n), func(b *testing.B) {
			l := slog.New(slog.NewJSONHandler(io.Discard, nil))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if l.Enabled(ctx, slog.LevelInfo) {
					l.LogAttrs(ctx, slog.LevelInfo, "request", slogAccessAttrs(r, x, "api", "backend", d)...)
				}
			}
		})
		b.Run(fmt.Sprintf("encoder/attempts=%d", n), func(b *testing.B) {
			l := NewAccessLog(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				l.write(r, x, "api", "backend", d)
			}
		})
	}
}

// countingWriter counts the writes it gets and keeps what they held.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) state() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, w.buf.String()
}

// TestBufferedAccessLog: with a buffer, lines are written together once
// the buffer is full or the flush interval has passed since the first of
// them, whole and in order; Close writes what waits, and lines logged after
// it go out one by one.
func TestBufferedAccessLog(t *testing.T) {
	w := new(countingWriter)
	l := NewBufferedAccessLog(w, 4096, 100*time.Millisecond)
	logLine := func(i int) {
		r := logReq("GET")
		x := &exchange{reqID: fmt.Sprintf("req-%04d", i), status: 200}
		l.write(r, x, "route", "pool", time.Millisecond)
	}
	for i := range 3 {
		logLine(i)
	}
	if n, _ := w.state(); n != 0 {
		t.Fatalf("%d writes before the buffer filled or the interval passed, want 0", n)
	}
	time.Sleep(300 * time.Millisecond)
	n, out := w.state()
	if n != 1 || strings.Count(out, "\n") != 3 {
		t.Fatalf("after the flush interval: %d writes holding %d lines, want 1 holding 3", n, strings.Count(out, "\n"))
	}
	// Enough lines to fill the buffer several times: each write holds
	// whole lines and at most the buffer's size.
	for i := 3; i < 200; i++ {
		logLine(i)
	}
	l.Close()
	n, out = w.state()
	if n < 2 || n > 200/4 {
		t.Errorf("%d writes for 200 lines with a 4 KiB buffer", n)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines written, want 200", len(lines))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["request_id"] != fmt.Sprintf("req-%04d", i) {
			t.Fatalf("line %d: %v %.120s", i, err, line)
		}
	}
	before, _ := w.state()
	logLine(200)
	if after, _ := w.state(); after != before+1 {
		t.Errorf("a line after Close took %d writes, want 1 at once", after-before)
	}
}
