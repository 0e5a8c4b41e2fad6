package codegen

import (
	"encoding/base64"
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

	"github.com/holdfast/holdfast/internal/curl"
)

// pythonRunners are the python and python-httpx programs (sync and async),
// with the interpreter that runs each.
func pythonRunners(t *testing.T) []runner {
	var out []runner
	for _, rn := range runners() {
		if rn.lang == "python" || rn.lang == "python-httpx" {
			out = append(out, rn)
		}
	}
	if len(out) != 3 {
		t.Fatalf("python runners: %d, want 3", len(out))
	}
	return out
}

// runPython writes the program of cmd for rn in a new folder, with files,
// and runs it there with env added; it returns its standard error.
func runPython(t *testing.T, rn runner, cmd string, files map[string]string, env ...string) string {
	t.Helper()
	s, err := curl.Parse(cmd)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Generate(rn.lang, s.Requests[0], rn.opts)
	if err != nil {
		t.Fatal(err)
	}
	if ws := Warnings(rn.lang, s.Requests[0], rn.opts); len(ws) > 0 {
		t.Errorf("%s: warnings %v, want none", cmd, ws)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "prog.py")
	files["prog.py"] = src
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	argv := rn.build(t, dir, file)
	c := exec.Command(argv[0], argv[1:]...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\n%s", rn.testName(), err, out, src)
	}
	return string(out)
}

// pyCookieFixture is the cookie file of docs/convert.md's example, whose
// Cookie header curl 7.88 was seen to send: each line tests one rule.
const pyCookieFixture = "# Netscape HTTP Cookie File\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tyes\n" +
	"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\thonly\tz\n" +
	"127.0.0.1\tFALSE\t/other\tFALSE\t0\tnotpath\tn\n" +
	".127.0.0.1\tTRUE\t/\tFALSE\t0\tdomainwide\tw\n" +
	"127.0.0.1\tFALSE\t/\tTRUE\t0\tsecureonly\ts\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\te\n" +
	"# a comment\n\nnot a cookie\n" +
	"other.test\tTRUE\t/\tFALSE\t0\totherhost\to\n"

// TestPythonCookieFiles: the python and python-httpx programs send the
// cookies of -b FILE that curl sends, in curl's order, before the
// command's own, and choose them again on each redirect hop (the
// command's own cookies staying with the first host). A missing file is
// no error. The expected headers are those curl 7.88 sent, but for the
// last hop, where curl also sends the command's own cookies.
func TestPythonCookieFiles(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+strings.Join(r.Header.Values("Cookie"), " | "))
		mu.Unlock()
		_, port, _ := net.SplitHostPort(r.Host)
		switch r.URL.Path {
		case "/p":
			http.Redirect(w, r, "/other/x", http.StatusFound)
		case "/other/x":
			http.Redirect(w, r, "http://localhost:"+port+"/y", http.StatusFound)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	want := []string{
		"/p secureonly=s; domainwide=w; fromfile=yes; honly=z; a=1; bb=2",
		"/other/x notpath=n; secureonly=s; domainwide=w; fromfile=yes; honly=z; a=1; bb=2",
		"/y lh=l",
	}
	files := map[string]string{"cookies.txt": pyCookieFixture, "more.txt": "localhost\tFALSE\t/\tFALSE\t0\tlh\tl\n"}
	for _, rn := range pythonRunners(t) {
		t.Run(rn.testName(), func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			runPython(t, rn, "curl -L -b cookies.txt -b absent.txt -b more.txt -b 'a=1; bb=2' "+srv.URL+"/p", files)
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("Cookie headers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestPythonProxy: the python and python-httpx programs send the request
// to the proxy of -x in absolute form, with -U's credentials, whatever
// HTTP_PROXY, ALL_PROXY and NO_PROXY say. The origin is a dead port: a
// program that went to it directly would fail.
func TestPythonProxy(t *testing.T) {
	var mu sync.Mutex
	var got []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI+" "+r.Host+" "+r.Header.Get("Proxy-Authorization"))
		mu.Unlock()
		fmt.Fprint(w, "proxied")
	}))
	defer proxy.Close()
	dead := deadAddr(t)
	env := []string{"HTTP_PROXY=http://" + dead, "http_proxy=http://" + dead, "ALL_PROXY=http://" + dead,
		"all_proxy=http://" + dead, "NO_PROXY=*", "no_proxy=*"}
	want := "GET http://" + dead + "/x " + dead + " Basic " + base64.StdEncoding.EncodeToString([]byte("pu:p@ss w:"))
	for _, rn := range pythonRunners(t) {
		t.Run(rn.testName(), func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			out := runPython(t, rn, "curl -x "+proxy.URL+" -U 'pu:p@ss w:' http://"+dead+"/x", map[string]string{}, env...)
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != want {
				t.Errorf("proxy saw %q, want %q", got, want)
			}
			if !strings.Contains(out, "proxied") {
				t.Errorf("output %q, want the proxy's response", out)
			}
		})
	}
}

// TestPythonSOCKS5Proxy: the httpx programs go through a socks5h://
// proxy with -U's credentials, handing it the host name to resolve; so
// does the requests program where PySocks is installed.
func TestPythonSOCKS5Proxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "through socks")
	}))
	defer origin.Close()
	socks := newSOCKS5(t, origin.Listener.Addr().String())
	for _, rn := range pythonRunners(t) {
		t.Run(rn.testName(), func(t *testing.T) {
			if rn.lang == "python" {
				if out, err := exec.Command("python3", "-c", "import socks").CombinedOutput(); err != nil {
					t.Skipf("PySocks is not installed for python3 (pip install requests[socks]): %s", lastLine(string(out)))
				}
			}
			out := runPython(t, rn, "curl --socks5-hostname "+socks.addr+" -U 'su:s p' http://origin.test/x", map[string]string{})
			if !strings.Contains(out, "through socks") {
				t.Errorf("output %q, want the origin's response", out)
			}
			if got, want := socks.last(), "su:s p origin.test:80"; got != want {
				t.Errorf("SOCKS5 proxy saw %q, want %q", got, want)
			}
		})
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
