package codegen

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/curl"
)

// The differential test: every command of testdata/curl-corpus is run by
// real curl and by the program of every target against one recording
// server on loopback, and what each sent is compared. A difference the
// converter did not warn about fails the test; the matrix of outcomes is
// the "Fidelity to curl" section of docs/convert.md, which -update
// rewrites and full mode (HOLDFAST_CONVERT_ALL=1) checks.

// libraryHeaders are the request headers that a client library adds by
// its own choice and that curl adds by its own: they are compared only
// when the command sets them itself. Framing (Content-Length,
// Transfer-Encoding, Expect) is the library's to choose; the body is
// compared instead. Accept-Encoding has a rule of its own (see
// compareRequests).
var libraryHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Length", "Expect",
	"Http2-Settings", "Keep-Alive", "Proxy-Connection", "Sec-Fetch-Mode", "Te", "Transfer-Encoding", "Upgrade", "User-Agent",
}

// recordedBody is what the recording server answers: the programs must
// print it, decoded when they asked for it compressed.
const recordedBody = "holdfast-recorded-response\n"

// diffStdin is the standard input of curl and of every program.
const diffStdin = "stdin line one\r\nstdin line two\n"

// seen is one request as the recording server saw it.
type seen struct {
	server string // "origin" or "proxy"
	method string
	target string // the request-target, absolute-form through a proxy
	host   string
	header http.Header
	body   []byte
}

// recorder is an origin server and a forward proxy, both on loopback,
// that answer every request with recordedBody and record it.
type recorder struct {
	mu     sync.Mutex
	reqs   []seen
	origin *httptest.Server
	proxy  *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	handler := func(server string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rec.mu.Lock()
			rec.reqs = append(rec.reqs, seen{server: server, method: r.Method, target: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: body})
			rec.mu.Unlock()
			if strings.HasPrefix(r.URL.Path, "/cookies/set") {
				// Cookies for the jar (-c) to keep: a session one, and one
				// with a path, an expiry and HttpOnly.
				w.Header().Add("Set-Cookie", "session=abc123; Path=/")
				w.Header().Add("Set-Cookie", "pref=dark; Path=/cookies; Expires=Wed, 01 Jan 2031 00:00:00 GMT; HttpOnly")
			}
			if strings.Contains(strings.ToLower(r.Header.Get("Accept-Encoding")), "gzip") {
				w.Header().Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				io.WriteString(zw, recordedBody)
				zw.Close()
				return
			}
			io.WriteString(w, recordedBody)
		}
	}
	rec.origin = httptest.NewServer(handler("origin"))
	rec.proxy = httptest.NewServer(handler("proxy"))
	t.Cleanup(rec.origin.Close)
	t.Cleanup(rec.proxy.Close)
	return rec
}

// requests returns what the recorder saw, its own addresses replaced by
// "origin.test" and "proxy.test", so that two recorders' records compare.
func (rec *recorder) requests() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	names := strings.NewReplacer(
		strings.TrimPrefix(rec.origin.URL, "http://"), "origin.test",
		strings.TrimPrefix(rec.proxy.URL, "http://"), "proxy.test")
	out := make([]seen, len(rec.reqs))
	for i, s := range rec.reqs {
		s.target, s.host = names.Replace(s.target), names.Replace(s.host)
		h := http.Header{}
		for k, vs := range s.header {
			for _, v := range vs {
				h.Add(k, names.Replace(v))
			}
		}
		s.header = h
		out[i] = s
	}
	return out
}

// corpusCase is one command of the corpus, made ready to run on loopback.
type corpusCase struct {
	name   string
	source string // the command, hosts pointed at the recorder
	script *curl.Script
	env    []string // the variables the command reads, set
	dir    string   // a working folder holding the files it reads
}

// extraFiles are files a command reads that the model does not hold
// (the converter warns that it leaves them out), created so that curl
// itself finds them.
var extraFiles = map[string][]string{
	"redirect_command_data.sh":             {"myfile.jg"},
	"redirect_variable_and_string_data.sh": {"startval_FILENAMEend"},
}

// cookieFileArg finds -b FILE and -c FILE: curl reads a cookie file given
// to -b (a value without '='), and -c names a jar.
var cookieFileArg = regexp.MustCompile(`(?:^|\s)(?:-b|--cookie)\s+['"]?([^\s='";]+)['"]?(?:\s|$)`)

// atFile finds what looks like a file name after @ (--data-urlencode
// name@file and --url-query @file, which the model leaves to curl).
var atFile = regexp.MustCompile(`@"?([A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z]+)`)

// absUpload matches an absolute path after @ or <, which the test makes
// relative so that its file can live in the test's folder: curl sends
// only the file's base name.
var absUpload = regexp.MustCompile(`([@<]"?)/`)

// prepareCase reads the corpus file name and points it at rec.
func prepareCase(t *testing.T, name string, rec *recorder) corpusCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "curl-corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	origin := strings.TrimPrefix(rec.origin.URL, "http://")
	proxy := strings.TrimPrefix(rec.proxy.URL, "http://")
	src := strings.NewReplacer(
		"localhost:28139", origin,
		"httpbin.org", origin,
		"localhost:8080", proxy,
	).Replace(string(data))
	src = absUpload.ReplaceAllString(src, "$1")
	script, err := curl.Parse(src)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := corpusCase{name: name, source: src, script: script, dir: t.TempDir()}
	vars := map[string]string{}
	for _, r := range script.Requests {
		for _, v := range r.Vars() {
			vars[v] = "val_" + v
			if strings.HasSuffix(v, "_TEXT") {
				// Text that curl URL-encodes where the command asks it to.
				vars[v] = "two words & é=/"
			}
		}
	}
	for _, v := range regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(src, -1) {
		if _, ok := vars[v[1]]; !ok {
			vars[v[1]] = "val_" + v[1]
		}
	}
	getenv := func(k string) string { return vars[k] }
	for k, v := range vars {
		c.env = append(c.env, k+"="+v)
	}
	sort.Strings(c.env)
	// Every file the requests read, with a CR LF inside, which -d @file
	// drops and --data-binary keeps.
	files := slices.Clone(extraFiles[name])
	for _, r := range script.Requests {
		if r.Body.File != nil {
			files = append(files, r.Body.File.Value(getenv))
		}
		for _, p := range r.Body.Parts {
			if p.File != nil {
				files = append(files, p.File.Value(getenv))
			}
		}
	}
	for _, r := range script.Requests {
		files = append(files, r.URL.Files()...)
		files = append(files, r.Body.Data.Files()...)
	}
	for _, m := range cookieFileArg.FindAllStringSubmatch(src, -1) {
		files = append(files, m[1])
	}
	// A jar (-c) is the program's to write, even when -b reads it too.
	files = slices.DeleteFunc(files, func(f string) bool { return slices.Contains(cookieJars(script), f) })
	for _, m := range atFile.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(files, m[1]) && !slices.Contains(cookieJars(script), m[1]) {
			files = append(files, m[1])
		}
	}
	for _, f := range files {
		if f == "" || f == "-" {
			continue
		}
		path := filepath.Join(c.dir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		content := "contents of " + f + "\r\nsecond line\n"
		if strings.Contains(f, "cookie") {
			host, _, _ := net.SplitHostPort(origin)
			content = "# Netscape HTTP Cookie File\n" + host + "\tFALSE\t/\tFALSE\t0\tfromfile\tyes\n"
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every request goes to the recorder, and nowhere else.
	for _, r := range script.Requests {
		u, err := url.Parse(r.URL.Value(getenv))
		if err != nil || u.Host != origin {
			t.Fatalf("%s: request to %q, which is not the recorder on loopback: add its host to prepareCase", name, r.URL.Value(getenv))
		}
	}
	return c
}

// cookieJars returns the jars (-c) the script's requests write.
func cookieJars(s *curl.Script) []string {
	var out []string
	for _, r := range s.Requests {
		if r.CookieJar != "" && !slices.Contains(out, r.CookieJar) {
			out = append(out, r.CookieJar)
		}
	}
	return out
}

// jarLines returns the cookies of the jars the case's requests wrote, one
// line each ("#HttpOnly_" lines included, comments not), sorted: the
// order of a jar's lines is the writer's choice.
func jarLines(c corpusCase) []string {
	var out []string
	for _, jar := range cookieJars(c.script) {
		data, err := os.ReadFile(filepath.Join(c.dir, jar))
		if err != nil {
			out = append(out, jar+": none written")
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if line == "" || strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "#HttpOnly_") {
				continue
			}
			out = append(out, jar+": "+line)
		}
	}
	sort.Strings(out)
	return out
}

// diffEnv is the environment of curl and of the programs: no proxy from
// the machine, a HOME without a .curlrc, and the command's variables.
func diffEnv(c corpusCase) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "home", "curl_home":
			continue
		}
		env = append(env, kv)
	}
	home := filepath.Join(c.dir, ".home")
	os.MkdirAll(home, 0o755)
	return append(append(env, "HOME="+home), c.env...)
}

// run runs argv in the case's folder, with diffStdin on its standard input.
func (c corpusCase) run(argv []string, dir string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = diffEnv(c)
	cmd.Stdin = strings.NewReader(diffStdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// outcome is what one target did with one command.
type outcome string

const (
	same      outcome = "same"
	warned    outcome = "warned"
	different outcome = "different"
)

// compareRequests returns how got differs from want, what curl sent, for
// the command's requests rs: one line per difference.
func compareRequests(want, got []seen, rs []*curl.Request) []string {
	var diffs []string
	if len(got) != len(want) {
		diffs = append(diffs, fmt.Sprintf("%d requests, curl sent %d", len(got), len(want)))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		w, g := want[i], got[i]
		var r *curl.Request
		if i < len(rs) {
			r = rs[i]
		}
		add := func(format string, args ...any) {
			diffs = append(diffs, fmt.Sprintf("request %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		if g.server != w.server {
			add("sent to the %s, curl to the %s", g.server, w.server)
		}
		if g.method != w.method {
			add("method %s, curl %s", g.method, w.method)
		}
		if percentUpper(g.target) != percentUpper(w.target) {
			add("target %q, curl %q", g.target, w.target)
		}
		if g.host != w.host {
			add("Host %q, curl %q", g.host, w.host)
		}
		names := map[string]bool{}
		for k := range w.header {
			names[k] = true
		}
		for k := range g.header {
			names[k] = true
		}
		keys := make([]string, 0, len(names))
		for k := range names {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, wv := headerValue(g.header, k), headerValue(w.header, k)
			if k == "Accept-Encoding" && wv != "" && gv == "" {
				add("no Accept-Encoding, curl sends %q", wv)
				continue
			}
			if slices.Contains(libraryHeaders, k) && !commandSets(r, k) {
				continue
			}
			if k == "Content-Type" && strings.HasPrefix(wv, "multipart/form-data") {
				wv, gv = mediaType(wv), mediaType(gv)
			}
			if gv != wv {
				add("header %s %q, curl %q", k, gv, wv)
			}
		}
		diffs = append(diffs, compareBodies(w, g, add)...)
	}
	return diffs
}

// percentHex is a percent-encoded byte.
var percentHex = regexp.MustCompile(`%[0-9a-fA-F]{2}`)

// percentUpper writes the hex digits of s's percent-encoded bytes in upper
// case: %c3%a9 and %C3%A9 are the same bytes (RFC 3986 section 2.1), and
// curl writes --url-query's in lower case where it writes the data's in
// upper case.
func percentUpper(s string) string {
	return percentHex.ReplaceAllStringFunc(s, strings.ToUpper)
}

// headerValue is the values of name joined as one field would hold them.
func headerValue(h http.Header, name string) string {
	sep := ", "
	if name == "Cookie" {
		sep = "; "
	}
	return strings.Join(h.Values(name), sep)
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return v
	}
	return mt
}

// commandSets reports whether the command sets header name itself (with
// -H, -A, -e, -b, --json or data), which curl then sends as given.
func commandSets(r *curl.Request, name string) bool {
	if r == nil {
		return false
	}
	_, ok := r.Header(name)
	return ok
}

// compareBodies compares the bodies, multipart ones part by part.
func compareBodies(w, g seen, add func(string, ...any)) []string {
	wparts, werr := formParts(w)
	if werr == nil {
		gparts, gerr := formParts(g)
		if gerr != nil {
			add("body is not the multipart form curl sends: %v", gerr)
			return nil
		}
		if !slices.Equal(gparts, wparts) {
			add("form parts\n    %s\n  curl\n    %s", strings.Join(gparts, "\n    "), strings.Join(wparts, "\n    "))
		}
		return nil
	}
	if !bytes.Equal(g.body, w.body) {
		add("body %q, curl %q", clip(g.body), clip(w.body))
	}
	return nil
}

// formParts reads a multipart/form-data body as one line per part.
func formParts(s seen) ([]string, error) {
	mt, params, err := mime.ParseMediaType(s.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("Content-Type %q", s.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(s.body), params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return out, err
		}
		out = append(out, fmt.Sprintf("name=%q filename=%q type=%q content=%q", p.FormName(), p.FileName(), p.Header.Get("Content-Type"), clip(data)))
	}
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// warningsFor returns the warnings the converter prints for c in lang
// that can explain a difference: all but the one about retries, which
// changes no request.
func warningsFor(c corpusCase, lang string) []curl.Warning {
	var out []curl.Warning
	ws := c.script.AllWarnings()
	for _, r := range c.script.Requests {
		ws = append(ws, Warnings(lang, r, Options{})...)
	}
	for _, w := range curl.SortWarnings(ws) {
		if w.Option != "--retry" {
			out = append(out, w)
		}
	}
	return out
}

// corpusNames lists testdata/curl-corpus/*.sh.
func corpusNames(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "curl-corpus", "*.sh"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus in testdata/curl-corpus: %v", err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

// curlRun is what curl itself sent for one command, and the cookie jar
// lines it wrote.
type curlRun struct {
	reqs []seen
	ok   bool
	jar  []string
}

func TestDifferentialAgainstCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs curl and the generated programs")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFail(t, "curl (Debian: curl)")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		skipOrFail(t, "bash")
	}
	names := corpusNames(t)
	// curl first, once per command.
	want := map[string]curlRun{}
	for _, name := range names {
		rec := newRecorder(t)
		c := prepareCase(t, name, rec)
		_, stderr, err := c.run([]string{"bash", "-c", c.source}, c.dir)
		want[name] = curlRun{reqs: rec.requests(), ok: err == nil, jar: jarLines(c)}
		if len(want[name].reqs) == 0 && err == nil {
			t.Fatalf("%s: curl sent nothing and succeeded: %s", name, stderr)
		}
	}

	var mu sync.Mutex
	matrix := map[string]map[string]outcome{} // lang -> command -> outcome
	t.Run("targets", func(t *testing.T) {
		for _, rn := range runners() {
			t.Run(rn.testName(), func(t *testing.T) {
				t.Parallel()
				if _, err := exec.LookPath(rn.tool); err != nil {
					skipOrFail(t, rn.tool)
				}
				results := diffTarget(t, rn, ownCommands(rn, names), want)
				mu.Lock()
				matrix[rn.testName()] = results
				mu.Unlock()
			})
		}
	})
	checkFidelityDoc(t, names, matrix)
}

// ownCommands are the commands of names that rn runs: all of them, but
// for the asyncio variant of python-httpx, whose requests are built by
// the same code as the synchronous program's and which runs holdfast's
// own commands only (hf_*: cookies, jars, Digest, run-time values,
// several requests), to keep the suite's time down.
func ownCommands(rn runner, names []string) []string {
	if !rn.opts.Async {
		return names
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "hf_") {
			out = append(out, n)
		}
	}
	return out
}

// diffProg is one generated program: its file and the requests it sends.
type diffProg struct {
	file string
	rs   []*curl.Request
}

// printsBody reports whether the program prints a response body: one of
// its requests has no -o and is not a HEAD.
func (p diffProg) printsBody() bool {
	for _, r := range p.rs {
		if r.Output == "" && r.Method != "HEAD" {
			return true
		}
	}
	return false
}

// diffTarget generates, builds and runs rn's programs for every command
// of the corpus and compares what they sent with what curl sent.
func diffTarget(t *testing.T, rn runner, names []string, want map[string]curlRun) map[string]outcome {
	t.Helper()
	root := t.TempDir()
	cases := make([]corpusCase, len(names))
	recs := make([]*recorder, len(names))
	progs := make([][]diffProg, len(names))
	var files []string
	for i, name := range names {
		recs[i] = newRecorder(t)
		cases[i] = prepareCase(t, name, recs[i])
		// One program for all the requests of the command.
		for j, rs := range [][]*curl.Request{cases[i].script.Requests} {
			src, err := GenerateScript(rn.lang, rs, rn.opts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			sub := filepath.Join(root, fmt.Sprintf("p%03d_%d", i, j))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(sub, rn.fileName())
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			progs[i] = append(progs[i], diffProg{file: file, rs: rs})
			files = append(files, file)
		}
	}
	var argvs [][]string
	if rn.buildAll != nil {
		argvs = rn.buildAll(t, root, files)
	} else {
		for _, f := range files {
			argvs = append(argvs, rn.build(t, filepath.Dir(f), f))
		}
	}
	// The commands run a few at a time, each against its own recorder:
	// most of a program's life is its runtime starting, not the CPU.
	first := make([]int, len(names)) // index in argvs of each command's first program
	for i, k := 0, 0; i < len(names); i++ {
		first[i] = k
		k += len(progs[i])
	}
	results := make([]outcome, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = runCase(t, rn, cases[i], recs[i], progs[i], argvs[first[i]:first[i]+len(progs[i])], want[names[i]])
		}()
	}
	wg.Wait()
	out := map[string]outcome{}
	for i, name := range names {
		out[name] = results[i]
	}
	return out
}

// runCase runs one command's programs, whose commands are argvs, and
// compares what they sent with what curl sent.
func runCase(t *testing.T, rn runner, c corpusCase, rec *recorder, progs []diffProg, argvs [][]string, want curlRun) outcome {
	t.Helper()
	var problems []string
	for j, p := range progs {
		stdout, stderr, err := c.run(argvs[j], c.dir)
		switch {
		case err != nil && want.ok:
			problems = append(problems, fmt.Sprintf("program %d failed where curl succeeded: %v\n%s", j+1, err, clip([]byte(stderr))))
		case err == nil && p.printsBody() && rn.lang != "shell" && !strings.Contains(stdout, recordedBody):
			problems = append(problems, fmt.Sprintf("program %d printed %q, not the response body (decoded)", j+1, clip([]byte(stdout))))
		}
	}
	problems = append(problems, compareRequests(want.reqs, rec.requests(), c.script.Requests)...)
	if jar := jarLines(c); !slices.Equal(jar, want.jar) {
		problems = append(problems, fmt.Sprintf("cookie jar\n    %s\n  curl\n    %s", strings.Join(jar, "\n    "), strings.Join(want.jar, "\n    ")))
	}
	return classify(t, c, rn.lang, problems)
}

// classify says whether the differences found for c in lang are none,
// warned, or not warned (a test failure).
func classify(t *testing.T, c corpusCase, lang string, problems []string) outcome {
	t.Helper()
	if len(problems) == 0 {
		return same
	}
	ws := warningsFor(c, lang)
	var unexplained []string
	for _, p := range problems {
		if !explained(p, ws) {
			unexplained = append(unexplained, p)
		}
	}
	if len(unexplained) == 0 {
		t.Logf("%s %s: differs from curl, warned (%d warnings): %s", lang, c.name, len(ws), strings.Join(problems, "; "))
		return warned
	}
	t.Errorf("%s %s: sends what curl does not, with no warning about it:\n  %s\nwarnings: %v", lang, c.name, strings.Join(unexplained, "\n  "), ws)
	return different
}

// explainers are, for each kind of difference, the curl options whose
// warning can explain it: a warning about cookies does not excuse a wrong
// body. The kind is how the difference's line starts, after "request N: ".
var explainers = []struct {
	prefix  string
	options []string
}{
	{"sent to the ", []string{"-x", "-U"}},
	{"target ", []string{"--url-query", "-G", "-T", "-x", ""}},
	{"Host ", []string{"-H", "-x"}},
	{"method ", []string{"-X", "-I", "-G", "-T"}},
	{"header Authorization ", []string{"-u", "-H", "--digest", "--no-basic", "--ntlm", "--negotiate", "--oauth2-bearer"}},
	{"header Cookie ", []string{"-b", "-c", "-H"}},
	{"header Content-Type ", []string{"-H", "-F", "-d", "--data", "--json", "-T"}},
	{"header Proxy-", []string{"-x", "-U"}},
	{"header Range ", []string{"-r", "--range", "-H"}},
	{"no Accept-Encoding", []string{"-H", "--compressed"}},
	{"header ", []string{"-H"}},
	{"body", bodyOptions},
	{"form parts", bodyOptions},
}

// bodyOptions are the options that make a body, and whose warnings can
// explain a body that differs; a Content-Type the command set with -H
// changes a form's framing too.
var bodyOptions = []string{"-d", "--data", "--data-ascii", "--data-binary", "--data-raw", "--data-urlencode",
	"--json", "-F", "--form", "--form-string", "-T", "--upload-file", "$(...)", "-H", "--digest"}

// explained reports whether difference p is one that a warning in ws
// names an option for. A cookie jar that differs is explained by a
// warning about cookies. A different number of requests, or a program that
// fails where curl did not, is explained by any warning: the command as a
// whole is then one the converter says it does not convert as written.
func explained(p string, ws []curl.Warning) bool {
	if len(ws) == 0 {
		return false
	}
	if strings.HasPrefix(p, "cookie jar") {
		return slices.ContainsFunc(ws, func(w curl.Warning) bool { return w.Option == "-c" || w.Option == "-b" })
	}
	if _, rest, ok := strings.Cut(p, ": "); ok && strings.HasPrefix(p, "request ") {
		for _, e := range explainers {
			if strings.HasPrefix(rest, e.prefix) {
				for _, w := range ws {
					if slices.Contains(e.options, w.Option) {
						return true
					}
				}
				return false
			}
		}
		return false
	}
	return true
}

// checkFidelityDoc writes the matrix into docs/convert.md with -update,
// and in full mode checks that the document shows it.
func checkFidelityDoc(t *testing.T, names []string, matrix map[string]map[string]outcome) {
	t.Helper()
	var langs []string
	for _, rn := range runners() {
		if matrix[rn.testName()] != nil {
			langs = append(langs, rn.testName())
		}
	}
	if len(langs) != len(runners()) && !*update {
		return // not every runtime here: nothing to compare the document with
	}
	var b strings.Builder
	b.WriteString("| command | " + strings.Join(langs, " | ") + " |\n|---|" + strings.Repeat("---|", len(langs)) + "\n")
	totals := map[outcome]int{}
	for _, n := range names {
		b.WriteString("| `" + strings.TrimSuffix(n, ".sh") + "` |")
		for _, l := range langs {
			o, ran := matrix[l][n]
			if !ran {
				b.WriteString(" · |")
				continue
			}
			totals[o]++
			b.WriteString(" " + string(o) + " |")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%d commands × %d targets (· not run: python-httpx-async runs the hf_ commands only): %d same as curl, %d different and warned, %d different without a warning.\n",
		len(names), len(langs), totals[same], totals[warned], totals[different])
	const path = "../../docs/convert.md"
	const begin, end = "<!-- fidelity matrix: begin -->\n", "<!-- fidelity matrix: end -->\n"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	before, rest, ok1 := strings.Cut(doc, begin)
	shown, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("docs/convert.md has no fidelity matrix markers (%q ... %q)", begin, end)
	}
	if shown == b.String() {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(before+begin+b.String()+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if fullMode() {
		t.Errorf("docs/convert.md shows an outdated fidelity matrix (run go test ./internal/codegen -run TestDifferentialAgainstCurl -update):\n%s", firstDiff(b.String(), shown))
	}
}

// TestExplained: a warning excuses only the differences its option can
// cause.
func TestExplained(t *testing.T) {
	cookie := []curl.Warning{{Option: "-b", Msg: "cookie file"}}
	tests := []struct {
		problem string
		ws      []curl.Warning
		want    bool
	}{
		{"request 1: header Cookie \"\", curl \"a=1\"", cookie, true},
		{"request 1: body \"x\", curl \"y\"", cookie, false},
		{"request 1: method WHAT, curl wHat", cookie, false},
		{"request 1: method WHAT, curl wHat", []curl.Warning{{Option: "-X"}}, true},
		{"request 1: header X-Trace \"\", curl \"1\"", nil, false},
		{"2 requests, curl sent 0", cookie, true},
		{"2 requests, curl sent 0", nil, false},
		{"request 1: sent to the origin, curl to the proxy", []curl.Warning{{Option: "-x"}}, true},
		{"request 1: form parts ...", []curl.Warning{{Option: "-x"}}, false},
		{"request 1: body \"a=1\", curl \"\"", []curl.Warning{{Option: "--digest"}}, true},
		{"cookie jar\n    a\n  curl\n    b", []curl.Warning{{Option: "--digest"}}, false},
		{"cookie jar\n    a\n  curl\n    b", []curl.Warning{{Option: "-c"}}, true},
	}
	for _, tt := range tests {
		if got := explained(tt.problem, tt.ws); got != tt.want {
			t.Errorf("explained(%q, %v) = %v, want %v", tt.problem, tt.ws, got, tt.want)
		}
	}
}
