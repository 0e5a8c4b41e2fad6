package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// binary is the holdfast executable built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "holdfast-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "holdfast")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, path, listen string, urls ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen:\n  - addr: %q\naccess_log: {path: \"off\"}\nshutdown: {drain_timeout: 5s}\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n", listen)
	for _, u := range urls {
		fmt.Fprintf(&b, "      - {url: %q}\n", u)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startProcess starts the binary with args and extra environment, and
// kills it at cleanup if it is still running.
func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{stderr: new(testutil.LogBuffer), done: make(chan error, 1)}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// process is a running "holdfast serve".
type process struct {
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	done   chan error
}

func startServe(t *testing.T, cfg, addr string) *process {
	t.Helper()
	p := startProcess(t, nil, "serve", "-c", cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("holdfast did not listen on %s:\n%s", addr, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeConfig(t, good, "127.0.0.1:8080", "http://127.0.0.1:9001")
	out, err := exec.Command(binary, "check", "-c", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("check of a valid file: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen:\n  - addr: \":8080\"\nroutes:\n  - match: {path_prefix: /}\n    upstream: p\nupstreams:\n  p:\n    servers:\n      - {url: \"http://a:1\"}\n    retry: {tires: 3}\n"), 0o644)
	out, err = exec.Command(binary, "check", "-c", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("check of a broken file: exit %v, want 1", err)
	}
	if !strings.Contains(string(out), "bad.yaml:10") || !strings.Contains(string(out), "tires") {
		t.Errorf("error does not name file, line and key:\n%s", out)
	}
}

func TestServeReloadAndShutdownUnderLoad(t *testing.T) {
	slow := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(20 * time.Millisecond)
			io.WriteString(w, name)
		})
	}
	a := testutil.Backend(t, slow("a"))
	b := testutil.Backend(t, slow("b"))
	addr := testutil.FreeAddr(t) // for holdfast
	cfg := filepath.Join(t.TempDir(), "holdfast.yaml")
	writeConfig(t, cfg, addr, a.URL)
	p := startServe(t, cfg, addr)
	url := "http://" + addr + "/"

	// Load throughout: every answer must be 200.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	waitFor(t, "traffic to a", func() bool { return a.Requests.Load() > 10 })
	// SIGHUP with a new pool.
	writeConfig(t, cfg, addr, b.URL)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "traffic to move to b", func() bool { _, body, _ := get(url); return body == "b" })

	// SIGHUP with a broken file: rejected, b keeps serving.
	os.WriteFile(cfg, []byte("listen: [\n"), 0o644)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "the rejection to be logged", func() bool { return strings.Contains(p.stderr.String(), "reload rejected") })
	if code, body, err := get(url); err != nil || code != 200 || body != "b" {
		t.Errorf("after a rejected reload: %d %q %v", code, body, err)
	}

	// SIGTERM under load: requests in flight complete; the process exits 0.
	time.Sleep(100 * time.Millisecond)
	p.signal(t, syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("holdfast did not stop within 10s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	// Requests sent after the listener closed fail to connect: those are
	// not errors holdfast gave; only answered-with-error or cut requests are.
	if v := firstErr.Load(); v != nil && !strings.Contains(v.(string), "connection refused") {
		t.Errorf("a request failed other than by finding the port closed: %v", v)
	}
	t.Logf("%d requests answered 200 across two reloads and a shutdown", ok.Load())
	if ok.Load() == 0 || a.Requests.Load() == 0 || b.Requests.Load() == 0 {
		t.Errorf("ok %d, a %d, b %d", ok.Load(), a.Requests.Load(), b.Requests.Load())
	}
}

// runBinary runs holdfast with args and returns its exit status and
// output streams.
func runBinary(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestHelpAndBadFlagExitStatus: through the real binary, help succeeds on
// stdout and a wrong flag fails with status 2 and the usage on stderr.
func TestHelpAndBadFlagExitStatus(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"convert", "--help"}, {"serve", "-h"}, {"help", "probe"}} {
		code, out, errOut := runBinary(t, binary, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage: holdfast") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 0 and the usage on stdout", args, code, errOut, out)
		}
	}
	for _, args := range [][]string{{"check", "--nope"}, {"convert", "--langue", "go"}, {"completion", "tcsh"}} {
		code, out, errOut := runBinary(t, binary, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "Usage: holdfast "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, out, errOut)
		}
	}
}

var versionLine = regexp.MustCompile(`^holdfast \S+ revision (unknown|[0-9a-f]{40} \S+( \(modified\))?)\n$`)

// TestVersionFromBuildInfo: "holdfast version" names the revision the
// binary was built from, as the go command records it with -buildvcs.
func TestVersionFromBuildInfo(t *testing.T) {
	// The binary of TestMain may be built with or without VCS information,
	// as GOFLAGS says: either way the line has its form.
	for _, arg := range []string{"version", "--version"} {
		if code, out, _ := runBinary(t, binary, arg); code != 0 || !versionLine.MatchString(out) {
			t.Errorf("%s: exit %d, %q; want 0 and a line matching %s", arg, code, out, versionLine)
		}
	}

	head := func() string {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Skipf("no git revision to compare with: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	before := head()
	bin := filepath.Join(t.TempDir(), "holdfast")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("go build -buildvcs=true: %v\n%s", err, out)
	}
	after := head()
	code, out, _ := runBinary(t, bin, "version")
	if code != 0 || !versionLine.MatchString(out) {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	if !strings.Contains(out, " revision "+before+" ") && !strings.Contains(out, " revision "+after+" ") {
		t.Errorf("version = %q, want revision %s (git rev-parse HEAD)", out, after)
	}
}
