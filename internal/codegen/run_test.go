package codegen

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/curl"
)

// The generated programs are run against a server that fails on purpose.
// Every target whose runtime is on the machine runs; a target whose
// runtime is missing is syntax-checked where its checker is present (javac,
// php -l, ruby -c) and skipped, naming the runtime. HOLDFAST_CONVERT_ALL=1
// turns a missing runtime into a failure, for CI's full mode.

// recorded is one request the flaky server received.
type recorded struct {
	method, uri, host string
	header            http.Header
	body              string
	at                time.Time
}

// flaky is a server that answers with a script of failures, then 200, and
// records every request. It exists because the generated code's retry
// behaviour can only be shown against real failures on a real socket.
type flaky struct {
	mu       sync.Mutex
	reqs     []recorded
	failures []string // per attempt: "502", "503-retry-after", "reset", "slow", ...
	srv      *httptest.Server
	refused  string // an address nothing listens on, for "307-refused"
}

func newFlaky(t *testing.T, failures ...string) *flaky {
	f := &flaky{failures: failures}
	// A port that was just closed refuses connections.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		f.refused = l.Addr().String()
		l.Close()
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flaky) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, recorded{method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: string(body), at: time.Now()})
	f.mu.Unlock()
	if n >= len(f.failures) {
		io.WriteString(w, "ok\n")
		return
	}
	switch f.failures[n] {
	case "502":
		http.Error(w, "bad gateway", http.StatusBadGateway)
	case "500":
		http.Error(w, "internal error", http.StatusInternalServerError)
	case "404":
		http.Error(w, "not found", http.StatusNotFound)
	case "503-retry-after":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case "503-huge-retry-after":
		// Far beyond any wait, and beyond time.Duration's range.
		w.Header().Set("Retry-After", "99999999999999999999")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case "503-overflow-retry-after":
		w.Header().Set("Retry-After", "9300000000")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case "307-refused":
		// A redirect to a port nothing listens on: the request was
		// delivered here, so the refused hop must not resend it.
		http.Redirect(w, r, "http://"+f.refused+"/next", http.StatusTemporaryRedirect)
	case "302":
		http.Redirect(w, r, "/next", http.StatusFound)
	case "loop":
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	case "reset":
		// Close with RST before any response byte: an upstream that crashed.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
		}
	case "slow":
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done():
		}
		io.WriteString(w, "too late\n")
	}
}

func (f *flaky) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// runner builds and runs one language's programs.
type runner struct {
	name  string // the subtest's name; "" means lang
	lang  string
	opts  Options // how the programs are generated
	ext   string
	file  string                                        // the program's file name; "" means main.EXT
	tool  string                                        // the executable that must be on PATH
	build func(t *testing.T, dir, file string) []string // returns the command to run
	// check, when set, syntax-checks a program with checkTool, for a
	// machine where tool is missing: the target is then still compiled
	// or parsed, if not run.
	checkTool string
	check     func(t *testing.T, dir, file string)
	// buildAll, when set, builds many programs at once, each file in a
	// folder of its own under root, and returns the command that runs
	// each, in the order of files: one compiler run instead of one per
	// program. A runner without build has only buildAll, for a language
	// whose libraries are worth compiling once per run.
	buildAll func(t *testing.T, root string, files []string) [][]string
}

// goBuildAll builds every program under root, a module of its own (with
// the holdfast module replaced by this repository when holdfast is set),
// into one binary: each program becomes a package of its own, its main
// renamed Main, and the binary's first argument says which to run. Linking
// is most of a Go build's time, and one link instead of one per program
// takes a minute and more off the suite.
func goBuildAll(holdfast bool) func(t *testing.T, root string, files []string) [][]string {
	return func(t *testing.T, root string, files []string) [][]string {
		module := "progs"
		env := append(os.Environ(), "GOWORK=off", "GOFLAGS=")
		if holdfast {
			module, env = "holdfastconvert", goHoldfastModule(t, root)
		} else if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module progs\n\ngo 1.26\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var imports, cases strings.Builder
		for i, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := string(src)
			if strings.Count("\n"+s, "\npackage main\n") != 1 || strings.Count(s, "\nfunc main() {") != 1 {
				t.Fatalf("%s: not one package main with one func main", f)
			}
			s = strings.Replace("\n"+s, "\npackage main\n", fmt.Sprintf("\npackage p%d\n", i), 1)[1:]
			s = strings.Replace(s, "\nfunc main() {", "\nfunc Main() {", 1)
			if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(root, filepath.Dir(f))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&imports, "\tp%d %q\n", i, module+"/"+filepath.ToSlash(rel))
			fmt.Fprintf(&cases, "\tcase \"%d\":\n\t\tp%d.Main()\n", i, i)
		}
		dispatch := "package main\n\nimport (\n\t\"os\"\n" + imports.String() + ")\n\n" +
			"func main() {\n\twhich := os.Args[1]\n\tos.Args = append(os.Args[:1], os.Args[2:]...)\n\tswitch which {\n" +
			cases.String() + "\tdefault:\n\t\tpanic(\"no program \" + which)\n\t}\n}\n"
		if err := os.MkdirAll(filepath.Join(root, "allprogs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "allprogs", "main.go"), []byte(dispatch), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(root, "allprogs.bin")
		cmd := exec.Command("go", "build", "-o", bin, "./allprogs")
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		argvs := make([][]string, len(files))
		for i := range files {
			argvs[i] = []string{bin, strconv.Itoa(i)}
		}
		return argvs
	}
}

// goHoldfastModule makes dir a module that requires holdfast from this
// repository, and returns the environment to build it in: the
// repository's go.sum holds every checksum the client's dependencies
// need, GOFLAGS=-mod=mod lets go complete go.mod, and no proxy is asked.
func goHoldfastModule(t *testing.T, dir string) []string {
	t.Helper()
	root := repoRoot(t)
	mod := "module holdfastconvert\n\ngo 1.26\n\nrequire github.com/holdfast/holdfast v0.0.0\n\nreplace github.com/holdfast/holdfast => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
}

func (rn runner) testName() string {
	if rn.name != "" {
		return rn.name
	}
	return rn.lang
}

func (rn runner) fileName() string {
	if rn.file != "" {
		return rn.file
	}
	return "main." + rn.ext
}

func runners() []runner {
	return []runner{
		{lang: "go", ext: "go", tool: "go", buildAll: goBuildAll(false), build: func(t *testing.T, dir, file string) []string {
			bin := filepath.Join(dir, "prog")
			cmd := exec.Command("go", "build", "-o", bin, file)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			if out, err := exec.Command("go", "vet", file).CombinedOutput(); err != nil {
				t.Fatalf("go vet: %v\n%s", err, out)
			}
			return []string{bin}
		}},
		// go-holdfast builds inside a throwaway module that points
		// github.com/holdfast/holdfast at this repository with a replace
		// directive: the program is built against the client package as it
		// is in the working tree, and no proxy is asked for anything.
		{lang: "go-holdfast", ext: "go", tool: "go", buildAll: goBuildAll(true), build: func(t *testing.T, dir, file string) []string {
			env := goHoldfastModule(t, dir)
			bin := filepath.Join(dir, "prog")
			for _, args := range [][]string{{"build", "-o", bin, "."}, {"vet", "."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir, cmd.Env = dir, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s: %v\n%s", args[0], err, out)
				}
			}
			return []string{bin}
		}},
		{lang: "python", ext: "py", tool: "python3", build: func(t *testing.T, dir, file string) []string {
			out, err := exec.Command("python3", "-c", "import requests, sys; print(sys.executable)").CombinedOutput()
			if err != nil {
				skipOrFail(t, "python3 requests (Debian: python3-requests): "+string(out))
			}
			return []string{pythonExecutable("python3", out), file}
		}},
		// One generator, run twice: the sync program and, with --async, the
		// asyncio one.
		{lang: "python-httpx", ext: "py", tool: "python3", build: httpxBuild},
		{name: "python-httpx-async", lang: "python-httpx", opts: Options{Async: true}, ext: "py", tool: "python3", build: httpxBuild},
		{lang: "javascript", ext: "js", tool: "node", build: func(t *testing.T, dir, file string) []string {
			if out, err := exec.Command("node", "--check", file).CombinedOutput(); err != nil {
				t.Fatalf("node --check: %v\n%s", err, out)
			}
			return []string{"node", file}
		}},
		{lang: "shell", ext: "sh", tool: "curl", build: func(t *testing.T, dir, file string) []string {
			if out, err := exec.Command("sh", "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("sh -n: %v\n%s", err, out)
			}
			return []string{"sh", file}
		}},
		// Java compiles once with javac and runs the class: the same source
		// "java Main.java" runs, without recompiling it for every scenario.
		{lang: "java", ext: "java", file: "Main.java", tool: "java", checkTool: "javac",
			check: javacCheck,
			build: func(t *testing.T, dir, file string) []string {
				if _, err := exec.LookPath("javac"); err != nil {
					skipOrFail(t, "javac (Debian: openjdk-17-jdk-headless)")
				}
				javacCheck(t, dir, file)
				return []string{"java", "-cp", filepath.Join(dir, "classes"), "Main"}
			},
			buildAll: javacAll},
		{lang: "php", ext: "php", tool: "php", checkTool: "php", check: phpCheck,
			build: func(t *testing.T, dir, file string) []string {
				phpCheck(t, dir, file)
				if out, err := exec.Command("php", "-r", "exit(function_exists('curl_init') ? 0 : 1);").CombinedOutput(); err != nil {
					skipOrFail(t, "the PHP curl extension (Debian: php-curl): "+string(out))
				}
				return []string{"php", file}
			}},
		{lang: "ruby", ext: "rb", tool: "ruby", checkTool: "ruby", check: rubyCheck,
			build: func(t *testing.T, dir, file string) []string {
				rubyCheck(t, dir, file)
				return []string{"ruby", file}
			}},
		// C compiles with the warnings a careful C programmer turns on, as
		// errors: a generated program must build cleanly, not only build.
		{lang: "c", ext: "c", tool: "cc", build: func(t *testing.T, dir, file string) []string {
			requireCurlHeaders(t)
			bin := filepath.Join(dir, "prog")
			cmd := exec.Command("cc", "-Wall", "-Wextra", "-Werror", "-o", bin, file, "-lcurl")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cc: %v\n%s", err, out)
			}
			return []string{bin}
		}},
		{lang: "rust", ext: "rs", tool: "cargo", buildAll: cargoBuildAll},
	}
}

// httpxBuild returns the command that runs an httpx program: python3 when
// it can import httpx, else Debian's /usr/bin/python3, as python3 on PATH
// may be another interpreter (a pyenv shim) without Debian's packages.
func httpxBuild(t *testing.T, dir, file string) []string {
	t.Helper()
	var tried []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		out, err := exec.Command(py, "-c", "import httpx, sys; print(sys.executable)").CombinedOutput()
		if err == nil {
			return []string{pythonExecutable(py, out), file}
		}
		tried = append(tried, py+": "+strings.TrimSpace(lastLine(string(out))))
	}
	skipOrFail(t, "python3 httpx (Debian: python3-httpx): "+strings.Join(tried, "; "))
	return nil
}

// pythonExecutable is the interpreter that python (a command on PATH,
// which may be a version manager's shim) runs, as it printed it in out:
// the programs run with it directly, as a shim's own start costs more
// than the interpreter's. python itself when out names no file.
func pythonExecutable(python string, out []byte) string {
	if exe := strings.TrimSpace(lastLine(string(out))); filepath.IsAbs(exe) {
		if _, err := os.Stat(exe); err == nil {
			return exe
		}
	}
	return python
}

// lastLine is the last non-empty line of s: the message of a traceback.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// javacAll compiles every program with one javac: each Main class is put
// in a package named after its folder, so that they share one class tree.
func javacAll(t *testing.T, root string, files []string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("javac"); err != nil {
		skipOrFail(t, "javac (Debian: openjdk-17-jdk-headless)")
	}
	classes := filepath.Join(root, "classes")
	argvs := make([][]string, len(files))
	for i, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pkg := filepath.Base(filepath.Dir(f))
		if err := os.WriteFile(f, append([]byte("package "+pkg+";\n"), src...), 0o644); err != nil {
			t.Fatal(err)
		}
		argvs[i] = []string{"java", "-cp", classes, pkg + ".Main"}
	}
	cmd := exec.Command("javac", append([]string{"-Xlint:all", "-Werror", "-d", classes}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return argvs
}

func javacCheck(t *testing.T, dir, file string) {
	t.Helper()
	cmd := exec.Command("javac", "-Xlint:all", "-Werror", "-d", filepath.Join(dir, "classes"), file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
}

// requireCurlHeaders skips the test, or fails it in full mode, when cc
// cannot find libcurl's curl/curl.h.
func requireCurlHeaders(t *testing.T) {
	t.Helper()
	cmd := exec.Command("cc", "-E", "-x", "c", "-o", os.DevNull, "-")
	cmd.Stdin = strings.NewReader("#include <curl/curl.h>\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		skipOrFail(t, "libcurl's headers, curl/curl.h (Debian: libcurl4-openssl-dev): "+string(out))
	}
}

func phpCheck(t *testing.T, dir, file string) {
	t.Helper()
	if out, err := exec.Command("php", "-l", file).CombinedOutput(); err != nil {
		t.Fatalf("php -l: %v\n%s", err, out)
	}
}

func rubyCheck(t *testing.T, dir, file string) {
	t.Helper()
	out, err := exec.Command("ruby", "-wc", file).CombinedOutput()
	if err != nil || strings.Contains(string(out), "warning") {
		t.Fatalf("ruby -wc: %v\n%s", err, out)
	}
}

// debianCrates is where Debian's librust-*-dev packages put the crates'
// sources, a registry cargo reads as a directory source, offline.
const debianCrates = "/usr/share/cargo/registry"

// cargoBuildAll builds the Rust programs into one binary of one cargo
// package, with one cargo invocation, against the crates Debian packages:
// reqwest and its dependencies compile once per run, and not at all once
// they are in the target folder, which is kept between runs under the
// user's cache folder. Each program is a module of the binary (its main
// made public), and the binary's own main runs the one its first argument
// names: one link instead of one per program, which with reqwest costs
// seconds each. Each run names its package after the test process, so
// that runs of two checkouts at once share the libraries but not the
// programs, and removes what it built of its own when it ends.
func cargoBuildAll(t *testing.T, dir string, files []string) [][]string {
	t.Helper()
	if found, _ := filepath.Glob(filepath.Join(debianCrates, "reqwest-0.11.*")); len(found) == 0 {
		skipOrFail(t, "reqwest 0.11 in "+debianCrates+" (Debian: librust-reqwest-dev)")
	}
	target := filepath.Join(t.TempDir(), "target")
	if cache, err := os.UserCacheDir(); err == nil {
		target = filepath.Join(cache, "holdfast-convert-rust")
	}
	pkg := fmt.Sprintf("holdfast-convert-%d", os.Getpid())
	project := filepath.Join(dir, "cargo")
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "[package]\nname = %q\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\nautobins = false\n\n", pkg)
	// Every feature and crate a generated program may need, so that the
	// libraries are built once for all of them.
	manifest.WriteString("[dependencies]\n" + `reqwest = { version = "0.11", features = ["blocking", "multipart", "native-tls"] }` + "\n")
	manifest.WriteString(`flate2 = "1"` + "\n" + `httpdate = "1"` + "\n" + `md-5 = "0.10"` + "\n" + `sha2 = "0.10"` + "\n\n")
	// Without debug information the libraries build faster and the
	// programs are a fraction of the size.
	manifest.WriteString("[profile.dev]\ndebug = false\n")
	fmt.Fprintf(&manifest, "\n[[bin]]\nname = %q\npath = \"src/main.rs\"\n", pkg)
	var dispatch, mods strings.Builder
	var argvs [][]string
	bin := filepath.Join(target, "debug", pkg)
	for i, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte("\nfn main() {")) {
			t.Fatalf("%s: no fn main", file)
		}
		src = bytes.Replace(src, []byte("\nfn main() {"), []byte("\npub fn main() {"), 1)
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
		mod := fmt.Sprintf("prog_%03d", i)
		fmt.Fprintf(&mods, "#[path = %q]\nmod %s;\n", file, mod)
		fmt.Fprintf(&dispatch, "        %q => %s::main(),\n", mod, mod)
		argvs = append(argvs, []string{bin, mod})
	}
	main := mods.String() + "\nfn main() {\n    match std::env::args().nth(1).unwrap_or_default().as_str() {\n" + dispatch.String() +
		"        other => {\n            eprintln!(\"no program {other:?}\");\n            std::process::exit(2);\n        }\n    }\n}\n"
	if err := os.MkdirAll(filepath.Join(project, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "src", "main.rs"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	bins := []string{pkg}
	config := "[source.crates-io]\nreplace-with = \"debian\"\n\n[source.debian]\ndirectory = \"" + debianCrates + "\"\n"
	for name, data := range map[string]string{"Cargo.toml": manifest.String(), ".cargo/config.toml": config} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(project, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(project, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeCargoOutputs(target, pkg, bins) })
	cmd := exec.Command("cargo", "build", "--offline", "--bins")
	cmd.Dir = project
	// CARGO_INCREMENTAL=0 keeps the compiler's incremental state, useless
	// for one-off programs, out of the shared folder. RUSTFLAGS is left
	// alone: it is part of every library's fingerprint, so that setting
	// it (-D warnings) here would rebuild them all for anyone who builds
	// without it.
	cmd.Env = append(os.Environ(), "CARGO_TARGET_DIR="+target, "CARGO_INCREMENTAL=0")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cargo build: %v\n%s", err, out)
	}
	// A generated program must build without warnings; cargo caps the
	// libraries' lints, so that any warning counted is a program's.
	if regexp.MustCompile(`\(bin "[^"]*"\) generated \d+ warnings?`).Match(out) {
		t.Fatalf("cargo build: the programs have warnings:\n%s", out)
	}
	t.Logf("cargo build of %d programs: %v (target folder %s)", len(files), time.Since(start).Round(time.Second), target)
	return argvs
}

// removeCargoOutputs removes what cargo built for package pkg and its bins
// from the shared target folder, leaving the libraries for the next run.
func removeCargoOutputs(target, pkg string, bins []string) {
	debug := filepath.Join(target, "debug")
	patterns := []string{filepath.Join(debug, ".fingerprint", pkg+"-*")}
	for _, bin := range bins {
		unit := strings.ReplaceAll(bin, "-", "_")
		patterns = append(patterns, filepath.Join(debug, bin), filepath.Join(debug, bin+".d"), filepath.Join(debug, "deps", unit+"-*"))
	}
	for _, p := range patterns {
		found, _ := filepath.Glob(p)
		for _, f := range found {
			os.RemoveAll(f)
		}
	}
}

// repoRoot finds the repository root, the folder of the go.mod of module
// github.com/holdfast/holdfast, from the test's working directory up.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(mod), "module github.com/holdfast/holdfast\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/holdfast/holdfast above the working directory")
		}
		dir = parent
	}
}

func fullMode() bool { return os.Getenv("HOLDFAST_CONVERT_ALL") == "1" }

func skipOrFail(t *testing.T, missing string) {
	t.Helper()
	if fullMode() {
		t.Fatalf("runtime missing in full mode: %s", missing)
	}
	t.Skipf("runtime missing: %s", missing)
}

// The commands the programs are generated from. The URL is read from the
// environment, so that one program serves every server.
const (
	getCmd = `curl -H 'X-Test: get' --retry 3 --retry-delay 0.05 -m 1 "$HOLDFAST_URL/items?page=2"`
	// postCmd has no Idempotency-Key: it must not be retried after a 502.
	postCmd = `curl -X POST -H 'X-Test: post' -d 'a=1' --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/orders"`
	// keyCmd has one, and a bit of everything a request carries.
	keyCmd = `curl -H 'Idempotency-Key: k-42' -H 'X-Test: key' -u 'me:s3cret' -b 'session=abc' -A 'holdfast-test' ` +
		`-d 'a=1' --data-urlencode 'b=two words' --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/orders?x=1"`
	// allCmd retries every error, as curl's --retry-all-errors does.
	allCmd = `curl -H 'X-Test: all' --retry-all-errors --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/items"`
	// allPostCmd too, but it is a POST without Idempotency-Key: a 500
	// proves it arrived, so it must not be resent.
	allPostCmd = `curl -X POST -d 'a=1' --retry-all-errors --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/orders"`
	// redirRefusedCmd is a POST without Idempotency-Key whose redirect
	// leads to a refused connection: the POST was delivered by then.
	redirRefusedCmd = `curl -L -d 'a=1' --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/rrefused"`
	// loopCmd meets a redirect loop: curl makes 1+3 requests and fails.
	loopCmd = `curl -L --max-redirs 3 --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/loop"`
	// hostCmd sets the Host header, which must reach the server.
	hostCmd = `curl -H 'Host: example.test' --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/items"`
	// credsCmd takes user:password from one variable, which curl splits at
	// its first ':' when it runs: runProgram sets CREDS to credsValue.
	credsCmd = `curl -u "$CREDS" -A 'holdfast-test' --retry 3 --retry-delay 0.05 "$HOLDFAST_URL/items"`
)

// credsValue is $CREDS: curl sends user alice, password s3cret:x, and so
// the Basic credentials are the whole value, base64-encoded.
const credsValue = "alice:s3cret:x"

// commands are the commands of every scenario, generated once per language.
var commands = []string{getCmd, postCmd, keyCmd, allCmd, allPostCmd, redirRefusedCmd, loopCmd, hostCmd, credsCmd}

type scenario struct {
	name     string
	cmd      string
	failures []string
	attempts int
	ok       bool
	minWait  time.Duration
	maxTotal time.Duration
	host     string   // the Host header the server must see; "" = not checked
	auth     string   // the Authorization header of every request; "" = not checked
	creds    string   // $CREDS for the program; "" = credsValue
	methods  []string // the method of each request, when it changes; nil = not checked
}

func scenarios(lang string) []scenario {
	s := []scenario{
		{name: "502-502-200", cmd: getCmd, failures: []string{"502", "502"}, attempts: 3, ok: true, maxTotal: 4 * time.Second},
		{name: "retry-after", cmd: getCmd, failures: []string{"503-retry-after"}, attempts: 2, ok: true, minWait: time.Second, maxTotal: 6 * time.Second},
		{name: "reset", cmd: getCmd, failures: []string{"reset", "reset"}, attempts: 3, ok: true, maxTotal: 5 * time.Second},
		// The per-attempt timer starts before the request reaches the server,
		// so the gap the server sees is under --max-time (1s) by however long
		// the runtime took to connect and send: a JVM on a busy machine has
		// taken over 300ms. Half of it still shows the attempt was given its
		// time rather than abandoned.
		{name: "slow", cmd: getCmd, failures: []string{"slow"}, attempts: 2, ok: true, minWait: 500 * time.Millisecond, maxTotal: 6 * time.Second},
		{name: "post-not-retried", cmd: postCmd, failures: []string{"502", "502"}, attempts: 1, ok: false, maxTotal: 5 * time.Second},
		{name: "post-with-key", cmd: keyCmd, failures: []string{"502", "502"}, attempts: 3, ok: true, maxTotal: 5 * time.Second},
		{name: "all-errors", cmd: allCmd, failures: []string{"500", "404"}, attempts: 3, ok: true, maxTotal: 5 * time.Second},
		{name: "all-errors-post", cmd: allPostCmd, failures: []string{"500"}, attempts: 1, ok: false, maxTotal: 5 * time.Second},
		// A Retry-After of years ends the retries at once, with the status:
		// 20 digits, and 9300000000 s, which overflows time.Duration.
		{name: "huge-retry-after", cmd: getCmd, failures: []string{"503-huge-retry-after"}, attempts: 1, ok: false, maxTotal: 5 * time.Second},
		{name: "overflow-retry-after", cmd: getCmd, failures: []string{"503-overflow-retry-after"}, attempts: 1, ok: false, maxTotal: 5 * time.Second},
		// The POST reached this server before the redirect's refused
		// connection: it must not be sent again.
		{name: "redirect-refused", cmd: redirRefusedCmd, failures: []string{"307-refused"}, attempts: 1, ok: false, maxTotal: 5 * time.Second},
		// --max-redirs 3 in a loop: 4 requests, a final error, no retry.
		{name: "redirect-loop", cmd: loopCmd, failures: strings.Fields(strings.Repeat("loop ", 20)), attempts: 4, ok: false, maxTotal: 5 * time.Second},
		// A POST answered with 302 is followed with a GET, without body, as curl does.
		{name: "post-302-get", cmd: redirRefusedCmd, failures: []string{"302"}, attempts: 2, ok: true, maxTotal: 5 * time.Second, methods: []string{"POST", "GET"}},
		{name: "host-header", cmd: hostCmd, attempts: 1, ok: true, maxTotal: 5 * time.Second, host: "example.test"},
		// -u "$CREDS" is split at the first ':' of the value when the program runs.
		{name: "user-from-env", cmd: credsCmd, failures: []string{"502"}, attempts: 2, ok: true, maxTotal: 5 * time.Second,
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(credsValue))},
		// Without a ':', the whole value is the user and the password is empty.
		{name: "user-from-env-no-colon", cmd: credsCmd, attempts: 1, ok: true, maxTotal: 5 * time.Second, creds: "alice",
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"))},
	}
	if lang == "go-holdfast" {
		// The client retries 502, 503, 504 (and 429): a 500 is an answer,
		// returned at once, and the program fails loudly with it.
		for i := range s {
			if s[i].name == "all-errors" {
				s[i].attempts, s[i].ok = 1, false
			}
		}
	}
	if lang == "shell" {
		// curl itself asks for the password of a user without one.
		for i := range s {
			if s[i].name == "user-from-env-no-colon" {
				s = append(s[:i], s[i+1:]...)
				break
			}
		}
		// curl's own --retry does not retry a connection reset (exit 56)
		// without --retry-all-errors, which would also retry a 404: the
		// shell target keeps curl's semantics and fails loudly.
		s[2].attempts, s[2].ok = 1, false
		// curl cannot read a Retry-After of 20 digits (it overflows its
		// parser), takes it for none and retries after its own delay; one
		// it can read but that ends past --retry-max-time stops the retries.
		for i := range s {
			if s[i].name == "huge-retry-after" {
				s[i].attempts, s[i].ok = 2, true
			}
		}
	}
	return s
}

func TestGeneratedProgramsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs generated programs")
	}
	for _, rn := range runners() {
		t.Run(rn.testName(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if _, err := exec.LookPath(rn.tool); err != nil {
				// Without the runtime, still compile or parse what can be.
				checked := ""
				if _, cerr := exec.LookPath(rn.checkTool); rn.check != nil && cerr == nil {
					for i, cmd := range commands {
						dir, file := writeProgram(t, rn, dir, i, cmd)
						rn.check(t, dir, file)
					}
					checked = " (programs syntax-checked with " + rn.checkTool + ")"
				}
				skipOrFail(t, rn.tool+checked)
			}
			progs := map[string][]string{}
			if rn.buildAll != nil {
				var files []string
				for i, cmd := range commands {
					_, file := writeProgram(t, rn, dir, i, cmd)
					files = append(files, file)
				}
				for i, argv := range rn.buildAll(t, dir, files) {
					progs[commands[i]] = argv
				}
			} else {
				for i, cmd := range commands {
					sub, file := writeProgram(t, rn, dir, i, cmd)
					progs[cmd] = rn.build(t, sub, file)
				}
			}
			for _, sc := range scenarios(rn.lang) {
				t.Run(sc.name, func(t *testing.T) {
					srv := newFlaky(t, sc.failures...)
					start := time.Now()
					creds := sc.creds
					if creds == "" {
						creds = credsValue
					}
					stdout, stderr, err := runProgram(t, progs[sc.cmd], srv.srv.URL, "CREDS="+creds)
					end := time.Now()
					reqs := srv.requests()
					// The bound is on what the program's retry logic
					// spends, from its first request to its exit: the
					// runtime's own start (a JVM's, on a loaded machine,
					// can take seconds) is not the program's doing.
					total := end.Sub(start)
					if len(reqs) > 0 {
						total = end.Sub(reqs[0].at)
					}
					if len(reqs) != sc.attempts {
						t.Errorf("attempts = %d, want %d\nstderr: %s", len(reqs), sc.attempts, stderr)
					}
					if sc.ok && (err != nil || !strings.Contains(stdout, "ok")) {
						t.Errorf("program failed: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
					}
					if !sc.ok && err == nil {
						t.Errorf("program succeeded, want a loud failure\nstdout: %s", stdout)
					}
					if !sc.ok && sc.name == "post-not-retried" && !strings.Contains(stdout+stderr, "502") && rn.lang != "shell" {
						t.Errorf("failure output does not name the status 502:\n%s", stderr)
					}
					if len(reqs) >= 2 && sc.minWait > 0 {
						if gap := reqs[1].at.Sub(reqs[0].at); gap < sc.minWait {
							t.Errorf("wait before the retry = %v, want at least %v", gap, sc.minWait)
						}
					}
					if total > sc.maxTotal {
						t.Errorf("took %v, want under %v", total, sc.maxTotal)
					}
					for i, r := range reqs {
						if sc.methods != nil {
							if i < len(sc.methods) && r.method != sc.methods[i] {
								t.Errorf("request %d: method %s, want %s", i+1, r.method, sc.methods[i])
							}
							if i > 0 && r.body != "" {
								t.Errorf("request %d: body %q after the switch to GET", i+1, r.body)
							}
							if i > 0 && r.method == "GET" {
								// Java 17's HttpClient sends Content-Length: 0 with every GET.
								if v := r.header.Get("Content-Type"); v != "" {
									t.Errorf("request %d: Content-Type %q after the switch to GET", i+1, v)
								}
								if v := r.header.Get("Content-Length"); v != "" && v != "0" {
									t.Errorf("request %d: Content-Length %q after the switch to GET", i+1, v)
								}
							}
							continue
						}
						if i > 0 && !sameRequest(r, reqs[0]) {
							t.Errorf("attempt %d differs from the first: %+v vs %+v", i+1, r, reqs[0])
						}
					}
					if sc.host != "" && len(reqs) > 0 && reqs[0].host != sc.host {
						t.Errorf("Host = %q, want %q", reqs[0].host, sc.host)
					}
					for i, r := range reqs {
						if got := r.header.Get("Authorization"); sc.auth != "" && got != sc.auth {
							t.Errorf("request %d: Authorization %q, want %q", i+1, got, sc.auth)
						}
					}
					if len(reqs) > 0 && (sc.cmd == keyCmd || sc.cmd == credsCmd && sc.creds == "") {
						compareWithCurl(t, reqs[0], sc.cmd)
					}
				})
			}
		})
	}
}

// writeProgram generates cmd's program for rn into its own folder under
// dir, and returns the folder and the file.
func writeProgram(t *testing.T, rn runner, dir string, i int, cmd string) (string, string) {
	t.Helper()
	s, err := curl.Parse(cmd)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Generate(rn.lang, s.Requests[0], rn.opts)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, string(rune('a'+i)))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(sub, rn.fileName())
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return sub, file
}

// runProgram runs argv with $HOLDFAST_URL set to url, and env, which
// defaults to CREDS=credsValue.
func runProgram(t *testing.T, argv []string, url string, env ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "HOLDFAST_URL="+url, "CREDS="+credsValue), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func sameRequest(a, b recorded) bool {
	return a.method == b.method && a.uri == b.uri && a.body == b.body
}

// compareWithCurl runs the command with curl itself against a recording
// server and checks that the generated program sent the same method, URI,
// body and the headers the command sets.
func compareWithCurl(t *testing.T, got recorded, cmd string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		return
	}
	srv := newFlaky(t)
	plain := strings.Replace(cmd, "--retry 3 --retry-delay 0.05 ", "", 1) // curl 7 takes no fraction
	if _, stderr, err := runProgram(t, []string{"sh", "-c", plain + " -s -o /dev/null"}, srv.srv.URL); err != nil {
		t.Fatalf("curl itself failed: %v %s", err, stderr)
	}
	want := srv.requests()[0]
	if got.method != want.method || got.uri != want.uri || got.body != want.body {
		t.Errorf("request = %s %s %q, curl sends %s %s %q", got.method, got.uri, got.body, want.method, want.uri, want.body)
	}
	for _, h := range []string{"Idempotency-Key", "X-Test", "Authorization", "Cookie", "User-Agent", "Content-Type"} {
		if g, w := got.header.Get(h), want.header.Get(h); g != w {
			t.Errorf("header %s = %q, curl sends %q", h, g, w)
		}
	}
}
