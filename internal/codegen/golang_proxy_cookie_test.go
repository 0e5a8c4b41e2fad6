package codegen

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// goTargets are the two Go targets, each built as a module of its own.
var goTargets = []struct {
	lang     string
	holdfast bool
}{{"go", false}, {"go-holdfast", true}}

// buildGo writes the program lang generates for each command and builds
// them with one go build; it returns the command that runs each, in order.
func buildGo(t *testing.T, lang string, holdfast bool, cmds ...string) [][]string {
	t.Helper()
	root := t.TempDir()
	var files []string
	for i, cmd := range cmds {
		_, file := writeProgram(t, runner{lang: lang, ext: "go"}, root, i, cmd)
		files = append(files, file)
	}
	return goBuildAll(holdfast)(t, root, files)
}

// hop is one request as a test server saw it.
type hop struct {
	server, target, host, cookie, proxyAuth string
}

// hopRecorder records every request it serves. It exists to see the
// Cookie header of each redirect hop, and what reaches a proxy.
type hopRecorder struct {
	mu   sync.Mutex
	hops []hop
}

func (h *hopRecorder) handler(server string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hops = append(h.hops, hop{server, r.RequestURI, r.Host, strings.Join(r.Header.Values("Cookie"), " | "), r.Header.Get("Proxy-Authorization")})
		h.mu.Unlock()
		if next != nil {
			next(w, r)
		}
	}
}

func (h *hopRecorder) take() []hop {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.hops
	h.hops = nil
	return out
}

// cookieFileLines are cookies for 127.0.0.1 (the example of
// docs/convert.md) and for localhost, where a redirect leads, with the
// lines curl skips or reads its own way.
var cookieFileLines = []string{
	"# Netscape HTTP Cookie File",
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tyes",
	"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\thonly\tz",
	"127.0.0.1\tFALSE\t/other\tFALSE\t0\tnotpath\tn",
	".127.0.0.1\tTRUE\t/\tFALSE\t0\tdomainwide\tw",
	"127.0.0.1\tFALSE\t/\tTRUE\t0\tsecureonly\ts",
	"127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\te",
	"",
	"not a cookie",
	"localhost\tFALSE\t/q\tFALSE\t0\tlq\t1",
	"LOCALHOST\tFALSE\t/\tTRUE\t0\tlsecure\t2",
	"localhost\tFALSE\t/qq\tFALSE\t0\tnotq\t3",
	"localhost\tFALSE\t/q/deep/\tFALSE\t0\tdeeper\t4",
	"localhost\tFALSE\t/q\tFALSE\t0\tLQ\treplaced",
	"localhost\tFALSE\t/\tFALSE\t0\tnovalue",
	"  localhost\tFALSE\tFALSE\t0\tnopath\t5",
	"localhost\tFALSE\t/\tFALSE\t0\t__Secure-x\t6",
	"localhost\tFALSE\t/\tFALSE\t0\textra\t7\tfield",
	".localhost\tFALSE\t/\tFALSE\t0\tdotonly\t8",
	"sub.localhost\tTRUE\t/\tFALSE\t0\tother\t9",
	"localhost\tTRUE\t/\tFALSE\t4102444800\tuntil2100\t10",
}

// TestGoCookieFiles runs the Go programs of a command that reads a cookie
// file and follows a redirect to another host, and checks the Cookie
// header of each hop: the file's matching cookies in curl's order, before
// the command's own. The expectations are what curl 7.88 sends; with curl
// installed, the test checks that it still does.
func TestGoCookieFiles(t *testing.T) {
	rec := &hopRecorder{}
	var srv *httptest.Server
	srv = httptest.NewServer(rec.handler("origin", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p" {
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			http.Redirect(w, r, "http://localhost:"+port+"/q/deep/x", http.StatusFound)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cookies.txt"), []byte(strings.Join(cookieFileLines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := "curl -s -L -b cookies.txt -b missing.txt -b 'a=1; bb=2' " + srv.URL + "/p"
	want := []string{
		"secureonly=s; domainwide=w; fromfile=yes; honly=z; a=1; bb=2",
		// curl sends the command's own cookies to the next host; Go's
		// net/http keeps a Cookie header to the first one (warned).
		"deeper=4; LQ=replaced; until2100=10; dotonly=8; novalue=; lsecure=2; nopath=5",
	}
	run := func(t *testing.T, argv ...string) []hop {
		t.Helper()
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", argv[0], err, out)
		}
		return rec.take()
	}
	check := func(t *testing.T, hops []hop, ownCookiesToNextHost bool) {
		t.Helper()
		if len(hops) != 2 {
			t.Fatalf("%d requests, want 2: %v", len(hops), hops)
		}
		for i, w := range want {
			if i == 1 && ownCookiesToNextHost {
				w += "; a=1; bb=2"
			}
			if hops[i].cookie != w {
				t.Errorf("request %d (%s): Cookie %q, want %q", i+1, hops[i].host, hops[i].cookie, w)
			}
		}
	}
	if _, err := exec.LookPath("curl"); err == nil {
		t.Run("curl", func(t *testing.T) { check(t, run(t, "sh", "-c", cmd), true) })
	}
	for _, g := range goTargets {
		t.Run(g.lang, func(t *testing.T) {
			argv := buildGo(t, g.lang, g.holdfast, cmd)[0]
			check(t, run(t, argv...), false)
		})
	}
}

// TestGoHTTPProxy checks that the Go programs send a plain-http request
// through the proxy of curl -x, in absolute-form, with the credentials of
// -U as Proxy-Authorization, whatever HTTP_PROXY says.
func TestGoHTTPProxy(t *testing.T) {
	rec := &hopRecorder{}
	proxy := httptest.NewServer(rec.handler("proxy", nil))
	defer proxy.Close()
	elsewhere := httptest.NewServer(rec.handler("environment's proxy", nil))
	defer elsewhere.Close()
	cmd := "curl -x " + proxy.URL + " -U puser:ppass http://origin.test/x"
	want := hop{"proxy", "http://origin.test/x", "origin.test", "", "Basic cHVzZXI6cHBhc3M="}
	for _, g := range goTargets {
		t.Run(g.lang, func(t *testing.T) {
			argv := buildGo(t, g.lang, g.holdfast, cmd)[0]
			c := exec.Command(argv[0], argv[1:]...)
			c.Env = append(os.Environ(), "HTTP_PROXY="+elsewhere.URL, "http_proxy="+elsewhere.URL, "NO_PROXY=origin.test")
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if hops := rec.take(); len(hops) != 1 || hops[0] != want {
				t.Errorf("requests = %+v, want %+v", hops, want)
			}
		})
	}
}

// TestGoSOCKS5Proxy checks that the Go programs go through the SOCKS5
// proxy of --socks5-hostname with the login of -U, and let the proxy
// resolve the host name.
func TestGoSOCKS5Proxy(t *testing.T) {
	rec := &hopRecorder{}
	origin := httptest.NewServer(rec.handler("origin", nil))
	defer origin.Close()
	socks := newSOCKS5(t, origin.Listener.Addr().String())
	cmd := "curl --socks5-hostname " + socks.addr + " -U suser:spass http://origin.test/s"
	for _, g := range goTargets {
		t.Run(g.lang, func(t *testing.T) {
			argv := buildGo(t, g.lang, g.holdfast, cmd)[0]
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if hops := rec.take(); len(hops) != 1 || hops[0].target != "/s" || hops[0].host != "origin.test" {
				t.Errorf("origin saw %+v, want GET /s for origin.test", hops)
			}
			if got, want := socks.take(), []string{"suser:spass origin.test:80"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("SOCKS5 proxy saw %q, want %q", got, want)
			}
		})
	}
}

func (s *socks5) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}
