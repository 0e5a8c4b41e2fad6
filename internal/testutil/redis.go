package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisServer is a real redis-server process on loopback, without
// persistence, for the tests of what shares state through Redis: the fake
// would have to reproduce Lua scripting and Redis's clock. Stop kills it (a
// crash, for failure tests), Start brings it back on the same port, Pause
// and Resume freeze and thaw it (a Redis too slow to answer). Its methods
// are safe for concurrent use; Start, and Redis itself, call t.Fatal and so
// belong on the test's goroutine.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{}
}

// Redis starts redis-server on a free loopback port and waits until it
// answers; cleanup kills it. Without redis-server the test is skipped,
// or fails when HOLDFAST_REQUIRE_TOOLS=1 (as in CI, which installs it).
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("HOLDFAST_REQUIRE_TOOLS") == "1" {
			t.Fatal("redis-server not found, and HOLDFAST_REQUIRE_TOOLS=1: apt-get install redis-server")
		}
		t.Skip("redis-server not found: apt-get install redis-server")
	}
	r := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(r.Stop)
	// The port is free when FreeAddr returns, but another process may take
	// it before redis-server binds it: try another then.
	for attempt := 1; ; attempt++ {
		_, port, _ := net.SplitHostPort(FreeAddr(t))
		r.port, _ = strconv.Atoi(port)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 3 {
			t.Fatalf("testutil: redis-server: %v", err)
		}
	}
}

// Addr returns the host:port redis-server listens on.
func (r *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// URL returns the redis:// URL of database 0.
func (r *RedisServer) URL() string {
	return "redis://" + r.Addr() + "/0"
}

// Stop kills redis-server with SIGKILL, as a crash would, and waits for it
// to exit. Stopping a stopped server does nothing.
func (r *RedisServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	r.proc.Kill()
	<-r.exited
	r.proc = nil
}

// Start starts redis-server again on the same port, empty, and waits until
// it answers. Starting a running server does nothing.
func (r *RedisServer) Start() {
	r.t.Helper()
	// The port may still be held for a moment by the process that died.
	var err error
	for i := 0; i < 20; i++ {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("testutil: redis-server: %v", err)
}

// Pause freezes redis-server with SIGSTOP: connections are still accepted
// by the kernel, but nothing answers, as with a Redis stuck in a long
// command or swapping. Resume thaws it.
func (r *RedisServer) Pause() { r.signal("-STOP") }

// Resume thaws a paused redis-server with SIGCONT.
func (r *RedisServer) Resume() { r.signal("-CONT") }

// signal sends a signal by PID through kill(1), whose names compile on every
// platform, unlike syscall.SIGSTOP.
func (r *RedisServer) signal(sig string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	if out, err := exec.Command("kill", sig, strconv.Itoa(r.proc.Pid)).CombinedOutput(); err != nil {
		r.t.Errorf("testutil: kill %s %d: %v: %s", sig, r.proc.Pid, err, out)
	}
}

// start runs redis-server on r.port and waits until it answers.
func (r *RedisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return nil
	}
	logFile := filepath.Join(r.dir, "redis.log")
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", logFile, "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The pid tells our server from another that took the port.
		if pid, err := redisPID(r.Addr()); err == nil && pid == cmd.Process.Pid {
			r.proc, r.exited = cmd.Process, exited
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("exited at start: %s", lastLines(string(log), 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no answer on %s in 10s", r.Addr())
		}
	}
}

// redisPID asks the Redis at addr for its process id (INFO server, in
// Redis's inline form): it answers once it is ready.
func redisPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
