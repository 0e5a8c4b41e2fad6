package codegen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/curl"
)

// jsJavaRunners are the JavaScript and Java programs, run from source.
var jsJavaRunners = []struct {
	lang, file string
	argv       []string
}{
	{"javascript", "main.js", []string{"node", "main.js"}},
	{"java", "Main.java", []string{"java", "Main.java"}},
}

// runGenerated writes the program of lang for command into dir (which
// holds the files it reads) and runs it there.
func runGenerated(t *testing.T, lang, file string, argv []string, dir, command string) {
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		skipOrFail(t, argv[0])
	}
	s, err := curl.Parse(command)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Generate(lang, s.Requests[0], Options{NoRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s program: %v\n%s\n%s", lang, err, out, src)
	}
}

// cookieFile holds, for 127.0.0.1, cookies that curl sends and cookies it
// leaves out, in the order that shows how it sorts them. The Cookie
// headers below are what curl 7.88 sent for it.
const cookieFile = "# Netscape HTTP Cookie File\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tyes\n" +
	"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\thonly\tz\n" +
	"127.0.0.1\tFALSE\t/other\tFALSE\t0\tnotpath\tn\n" +
	".127.0.0.1\tTRUE\t/\tFALSE\t0\tdomainwide\tw\n" +
	"127.0.0.1\tFALSE\t/\tTRUE\t0\tsecureonly\ts\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\te\n" +
	"example.com\tTRUE\t/\tFALSE\t0\totherhost\to\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\taaaaaaaa\t1\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tdup\n" +
	"127.0.0.1\tFALSE\t/p/\tFALSE\t0\tpslash\t1\n" +
	"127.0.0.1\tFALSE\t/p\tFALSE\t0\tp\t1\n" +
	"malformed line\n" +
	"\n" +
	"127.0.0.1\tFALSE\t/\tFALSE\t0\tnovalue\n"

func TestJSJavaCookieFiles(t *testing.T) {
	for _, rn := range jsJavaRunners {
		t.Run(rn.lang, func(t *testing.T) {
			var mu sync.Mutex
			got := map[string]string{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got[r.URL.Path] = r.Header.Get("Cookie")
				mu.Unlock()
				if r.URL.Path == "/start" {
					http.Redirect(w, r, "/p/x", http.StatusFound)
				}
			}))
			defer srv.Close()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cookies.txt"), []byte(cookieFile), 0o644); err != nil {
				t.Fatal(err)
			}
			// missing.txt does not exist: no cookies from it, no error.
			runGenerated(t, rn.lang, rn.file, rn.argv, dir, "curl -L -b cookies.txt -b missing.txt -b 'a=1; bb=2' "+srv.URL+"/start")
			want := map[string]string{
				"/start": "secureonly=s; domainwide=w; aaaaaaaa=1; fromfile=dup; novalue=; honly=z; a=1; bb=2",
				"/p/x":   "pslash=1; p=1; secureonly=s; domainwide=w; aaaaaaaa=1; fromfile=dup; novalue=; honly=z; a=1; bb=2",
			}
			for path, w := range want {
				if got[path] != w {
					t.Errorf("Cookie to %s = %q, want %q", path, got[path], w)
				}
			}
		})
	}
}

// connectProxy is a forward proxy that only tunnels (CONNECT), recording
// each CONNECT: the HTTPS test needs to see what reaches the proxy, which
// the origin, behind TLS, cannot tell.
type connectProxy struct {
	ln       net.Listener
	mu       sync.Mutex
	connects []*http.Request
	wg       sync.WaitGroup
}

func newConnectProxy(t *testing.T) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.tunnel(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *connectProxy) tunnel(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.connects = append(p.connects, req)
	p.mu.Unlock()
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

func TestJSJavaProxyHTTPSThroughConnect(t *testing.T) {
	for _, rn := range jsJavaRunners {
		t.Run(rn.lang, func(t *testing.T) {
			var mu sync.Mutex
			var seenAuth []string
			origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seenAuth = append(seenAuth, r.Header.Get("Proxy-Authorization"))
				mu.Unlock()
				io.WriteString(w, "secret\n")
			}))
			defer origin.Close()
			proxy := newConnectProxy(t)
			runGenerated(t, rn.lang, rn.file, rn.argv, t.TempDir(),
				"curl -k -x http://"+proxy.ln.Addr().String()+" -U pu:pp "+origin.URL+"/secure")
			proxy.mu.Lock()
			defer proxy.mu.Unlock()
			if len(proxy.connects) != 1 {
				t.Fatalf("the proxy saw %d CONNECTs, want 1", len(proxy.connects))
			}
			c := proxy.connects[0]
			if want := strings.TrimPrefix(origin.URL, "https://"); c.Host != want {
				t.Errorf("CONNECT %s, want %s", c.Host, want)
			}
			if got, want := c.Header.Get("Proxy-Authorization"), "Basic cHU6cHA="; got != want {
				t.Errorf("CONNECT's Proxy-Authorization = %q, want %q", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seenAuth) != 1 || seenAuth[0] != "" {
				t.Errorf("the origin saw %d requests, Proxy-Authorization %q: want 1, without", len(seenAuth), seenAuth)
			}
		})
	}
}
