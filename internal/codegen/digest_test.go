package codegen

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
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

// The Digest test: a server that challenges as RFC 7616 says and checks
// the answer with the password it knows, against the program of every
// language, and curl.

// digestPassword is the password the server knows for digestUser.
const (
	digestUser     = "user"
	digestPassword = "s3cret"
	digestNonce    = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
	digestOpaque   = "5ccc069c403ebaf9f0171e9517f40e41"
)

// digestServer challenges every request without Authorization with the
// algorithm its path names (/MD5, /SHA-256, /MD5-sess, /SHA-256-sess,
// and /MD5-noqop for RFC 2069's form without qop), and answers one whose
// Authorization checks out with 200 "ok", any other with 401.
type digestServer struct {
	mu   sync.Mutex
	reqs []recorded
	bad  []string // why each rejected Authorization was wrong
	srv  *httptest.Server
}

func newDigestServer(t *testing.T) *digestServer {
	d := &digestServer{}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *digestServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.reqs = append(d.reqs, recorded{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: string(body)})
	d.mu.Unlock()
	alg := strings.Trim(r.URL.Path, "/")
	qop := !strings.HasSuffix(alg, "-noqop")
	alg = strings.TrimSuffix(alg, "-noqop")
	auth := r.Header.Get("Authorization")
	if auth != "" {
		if why := checkDigest(r.Method, r.RequestURI, alg, qop, auth); why != "" {
			d.mu.Lock()
			d.bad = append(d.bad, why)
			d.mu.Unlock()
		} else {
			io.WriteString(w, "ok\n")
			return
		}
	}
	c := fmt.Sprintf(`Digest realm="holdfast@test", nonce="%s", opaque="%s", algorithm=%s`, digestNonce, digestOpaque, alg)
	if qop {
		c += `, qop="auth"`
	}
	w.Header().Set("WWW-Authenticate", c)
	http.Error(w, "authentication required", http.StatusUnauthorized)
}

func (d *digestServer) requests() ([]recorded, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]recorded(nil), d.reqs...), append([]string(nil), d.bad...)
}

// digestParams reads the parameters of a Digest Authorization header.
func digestParams(v string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(v, "Digest ")
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, false
		}
		k = strings.ToLower(strings.TrimSpace(k))
		after = strings.TrimLeft(after, " ")
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				return nil, false
			}
			val, after = after[1:1+end], after[2+end:]
		} else {
			val, after, _ = strings.Cut(after, ",")
			after = "," + after
		}
		out[k] = strings.TrimSpace(val)
		after = strings.TrimSpace(after)
		rest = strings.TrimSpace(strings.TrimPrefix(after, ","))
	}
	return out, true
}

// checkDigest says what is wrong with an Authorization header as the
// answer to the server's challenge, or "" when it is right.
func checkDigest(method, uri, alg string, qop bool, auth string) string {
	p, ok := digestParams(auth)
	if !ok {
		return "not a Digest Authorization: " + auth
	}
	var newHash func() hash.Hash
	switch strings.TrimSuffix(alg, "-sess") {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	}
	h := func(s string) string {
		x := newHash()
		io.WriteString(x, s)
		return hex.EncodeToString(x.Sum(nil))
	}
	for k, want := range map[string]string{"username": digestUser, "realm": "holdfast@test", "nonce": digestNonce, "opaque": digestOpaque, "uri": uri} {
		if p[k] != want {
			return fmt.Sprintf("%s %q, want %q in %s", k, p[k], want, auth)
		}
	}
	if a := p["algorithm"]; a != "" && !strings.EqualFold(a, alg) {
		return fmt.Sprintf("algorithm %q, challenged with %q", a, alg)
	}
	ha1 := h(digestUser + ":holdfast@test:" + digestPassword)
	if strings.HasSuffix(alg, "-sess") {
		ha1 = h(ha1 + ":" + digestNonce + ":" + p["cnonce"])
	}
	ha2 := h(method + ":" + uri)
	want := h(ha1 + ":" + digestNonce + ":" + ha2)
	if qop {
		if p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "" {
			return "qop, nc or cnonce missing: " + auth
		}
		want = h(ha1 + ":" + digestNonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	}
	if p["response"] != want {
		return "wrong response in " + auth
	}
	return ""
}

// TestCheckDigest: the server's check accepts what curl sends and
// refuses a wrong password, so that the test of the programs can trust it.
func TestCheckDigest(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFail(t, "curl (Debian: curl)")
	}
	d := newDigestServer(t)
	for _, tt := range []struct {
		path, pass string
		ok         bool
	}{{"/MD5", digestPassword, true}, {"/SHA-256", digestPassword, true}, {"/MD5-sess", digestPassword, true}, {"/MD5-noqop", digestPassword, true}, {"/SHA-256", "wrong", false}} {
		out, err := exec.Command("curl", "-s", "--fail", "--digest", "-u", digestUser+":"+tt.pass, d.srv.URL+tt.path).CombinedOutput()
		if ok := err == nil && string(out) == "ok\n"; ok != tt.ok {
			_, bad := d.requests()
			t.Errorf("curl %s with password %q: ok = %v, want %v (%s; server: %v)", tt.path, tt.pass, ok, tt.ok, out, bad)
		}
	}
}

// buildPrograms writes the program src[i] for rn into its own folder
// under dir, builds them all, and returns the command that runs each.
func buildPrograms(t *testing.T, rn runner, dir string, srcs []string) [][]string {
	t.Helper()
	var files []string
	for i, src := range srcs {
		sub := filepath.Join(dir, fmt.Sprintf("p%02d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(sub, rn.fileName())
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	if rn.buildAll != nil {
		return rn.buildAll(t, dir, files)
	}
	var argvs [][]string
	for _, f := range files {
		argvs = append(argvs, rn.build(t, filepath.Dir(f), f))
	}
	return argvs
}

// TestDigestAuth: every program that answers Digest challenges first
// sends the request as curl does (no credentials, no body), then once
// more, whole, with the Authorization the challenge asks for, for every
// algorithm; a wrong password ends in a loud 401.
func TestDigestAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs generated programs")
	}
	cases := []struct {
		path, cmd string
		body      string // the body of the answered request
		ok        bool
	}{
		{"/MD5", `curl --digest -u 'user:s3cret' "$HOLDFAST_URL/MD5?x=1"`, "", true},
		{"/SHA-256", `curl --digest -u user:s3cret -d 'a=1&b=2' "$HOLDFAST_URL/SHA-256"`, "a=1&b=2", true},
		{"/MD5-sess", `curl --digest -u user:s3cret -X PUT -H 'Content-Type: text/plain' --data-binary 'put body' "$HOLDFAST_URL/MD5-sess"`, "put body", true},
		{"/SHA-256-sess", `curl --digest -u user:s3cret "$HOLDFAST_URL/SHA-256-sess"`, "", true},
		{"/MD5-noqop", `curl --digest -u user:s3cret "$HOLDFAST_URL/MD5-noqop"`, "", true},
		{"/SHA-256", `curl --digest -u user:wrong "$HOLDFAST_URL/SHA-256"`, "", false},
	}
	for _, rn := range runners() {
		t.Run(rn.testName(), func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(rn.tool); err != nil {
				skipOrFail(t, rn.tool)
			}
			var srcs []string
			for _, c := range cases {
				s, err := curl.Parse(c.cmd)
				if err != nil {
					t.Fatal(err)
				}
				src, err := Generate(rn.lang, s.Requests[0], rn.opts)
				if err != nil {
					t.Fatal(err)
				}
				srcs = append(srcs, src)
			}
			argvs := buildPrograms(t, rn, t.TempDir(), srcs)
			for i, c := range cases {
				d := newDigestServer(t)
				stdout, stderr, err := runProgram(t, argvs[i], d.srv.URL)
				reqs, bad := d.requests()
				if ok := err == nil && strings.Contains(stdout, "ok"); ok != c.ok {
					t.Errorf("%s: ok = %v, want %v (%v)\nstdout: %s\nstderr: %s\nrejected: %v", c.cmd, ok, c.ok, err, stdout, stderr, bad)
				}
				if len(reqs) != 2 {
					t.Errorf("%s: %d requests, want 2 (a probe without credentials, then the answer)", c.cmd, len(reqs))
					continue
				}
				if a := reqs[0].header.Get("Authorization"); a != "" || reqs[0].body != "" {
					t.Errorf("%s: first request sent Authorization %q and body %q, want neither (as curl)", c.cmd, a, reqs[0].body)
				}
				if reqs[1].body != c.body {
					t.Errorf("%s: the answered request's body %q, want %q", c.cmd, reqs[1].body, c.body)
				}
				if c.ok && len(bad) > 0 {
					t.Errorf("%s: the server rejected the answer: %v", c.cmd, bad)
				}
			}
		})
	}
}
