package codegen

import (
	"encoding/base64"
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

// cookieFixture is a Netscape cookie file with cookies that curl sends and
// cookies that it does not, for 127.0.0.1 and, after a redirect, for
// 127.0.0.2. The Cookie headers the tests want are what curl 7.88 sent
// for it.
const cookieFixture = "# Netscape HTTP Cookie File\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tyes\n" +
	"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\thonly\tz\n" +
	"127.0.0.1\tFALSE\t/other\tFALSE\t0\tnotpath\tn\n" +
	".127.0.0.1\tTRUE\t/\tFALSE\t0\tdomainwide\tw\n" +
	"127.0.0.1\tFALSE\t/\tTRUE\t0\tsecureonly\ts\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\te\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tfuture\tf\n" +
	"\nmalformed line\n" +
	"example.com\tTRUE\t/\tFALSE\t0\telsewhere\t5\n" +
	"127.0.0.2\tFALSE\t/other\tFALSE\t0\tlpath\t1\n" +
	"127.0.0.2\tFALSE\t/\tFALSE\t0\tlroot\t2\n" +
	".127.0.0.2\tTRUE\t/\tFALSE\t0\tldot\t3\n" +
	"127.0.0.2\tFALSE\t/\tTRUE\t0\tlsecure\t4\n" +
	"127.0.0.2\tFALSE\t/otherwise\tFALSE\t0\tlnot\t5\n"

// hit is one request as a test server saw it.
type hit struct {
	target, cookie, proxyAuth string
}

// hits records the requests of a test's servers.
type hits struct {
	mu   sync.Mutex
	list []hit
}

func (h *hits) add(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, hit{r.RequestURI, strings.Join(r.Header.Values("Cookie"), "; "), r.Header.Get("Proxy-Authorization")})
}

func (h *hits) take() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.list
	h.list = nil
	return out
}

// TestProxyAndCookieFiles runs the php, c, ruby and rust programs of
// commands with -b FILE and -x against servers on loopback: the cookies
// each hop gets are curl's, and the proxy of -x is used, with -U's
// credentials, though the environment names another.
func TestProxyAndCookieFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs generated programs")
	}
	var seen hits
	// other is a second host on loopback, for a redirect to another host.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	other := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
	})}}
	other.Start()
	t.Cleanup(other.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, other.URL+"/other/x", http.StatusFound)
		}
	}))
	t.Cleanup(origin.Close)
	// The proxy answers every request itself: it only has to record it.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.add(r) }))
	t.Cleanup(proxy.Close)

	dead := deadAddress(t)
	fromFiles := "secureonly=s; domainwide=w; fromfile=yes; future=f; honly=z"
	cases := []struct {
		name, cmd string
		proxy     bool
		want      []hit
	}{
		{"cookie file and -b string", "curl -b cookies.txt -b 'a=1; bb=2' " + origin.URL + "/p", false,
			[]hit{{target: "/p", cookie: fromFiles + "; a=1; bb=2"}}},
		{"cookie files per hop", "curl -L -b cookies.txt -b missing.txt " + origin.URL + "/redirect", false,
			[]hit{{target: "/redirect", cookie: fromFiles}, {target: "/other/x", cookie: "lpath=1; lroot=2; ldot=3"}}},
		{"proxy with credentials", "curl -x " + proxy.URL + " -U pu:pp http://" + dead + "/x", true,
			[]hit{{target: "http://" + dead + "/x", proxyAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("pu:pp"))}}},
	}
	for _, rn := range runners() {
		switch rn.lang {
		case "php", "c", "ruby", "rust":
		default:
			continue
		}
		if rn.name != "" {
			continue
		}
		t.Run(rn.lang, func(t *testing.T) {
			if _, err := exec.LookPath(rn.tool); err != nil {
				skipOrFail(t, rn.tool)
			}
			dir := t.TempDir()
			var dirs, files []string
			for i, c := range cases {
				sub, file := writeProgram(t, rn, dir, i, c.cmd)
				if err := os.WriteFile(filepath.Join(sub, "cookies.txt"), []byte(cookieFixture), 0o644); err != nil {
					t.Fatal(err)
				}
				dirs, files = append(dirs, sub), append(files, file)
			}
			var argvs [][]string
			if rn.buildAll != nil {
				argvs = rn.buildAll(t, dir, files)
			} else {
				for i := range cases {
					argvs = append(argvs, rn.build(t, dirs[i], files[i]))
				}
			}
			for i, c := range cases {
				cmd := exec.Command(argvs[i][0], argvs[i][1:]...)
				cmd.Dir = dirs[i]
				cmd.Env = os.Environ()
				if c.proxy {
					// The environment's proxy leads nowhere: -x must win over it.
					cmd.Env = append(cmd.Env, "http_proxy=http://"+dead, "HTTP_PROXY=http://"+dead, "all_proxy=http://"+dead)
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: %v\n%s", c.name, err, out)
				}
				got := seen.take()
				if len(got) != len(c.want) {
					t.Errorf("%s: requests %+v, want %+v", c.name, got, c.want)
					continue
				}
				for j := range got {
					if got[j] != c.want[j] {
						t.Errorf("%s: request %d = %+v, want %+v", c.name, j+1, got[j], c.want[j])
					}
				}
			}
		})
	}
}

// deadAddress returns a loopback address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
