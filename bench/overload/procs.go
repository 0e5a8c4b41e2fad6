package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness started. Each is stopped by its PID, and
// only its PID: SIGTERM, then SIGKILL if it has not exited within 5s.
type proc struct {
	name   string
	cmd    *exec.Cmd
	logf   string        // its standard error (and output, unless read)
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result, once exited is closed
}

// procs records every process started, so that all of them are stopped on
// the way out, Ctrl-C included.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv with its output in logf. The child gets its own process
// group, so that a Ctrl-C at the terminal reaches only the harness, which
// then stops the child itself in order; on Linux it is also killed if the
// harness dies without cleaning up.
func (ps *procs) start(name, logf string, argv ...string) (*proc, error) {
	out, err := os.Create(logf)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logf: logf, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// startListening is start for a program that prints "listening ADDR" on
// its standard output once it is ready; it returns ADDR.
func (ps *procs) startListening(name, logf string, argv ...string) (*proc, string, error) {
	out, err := os.Create(logf)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		out.Close()
		return nil, "", err
	}
	cmd.Stderr = out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logf: logf, exited: make(chan struct{})}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()

	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok && !sent {
				addrc <- a
				sent = true
			}
			fmt.Fprintln(out, sc.Text())
		}
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	select {
	case a := <-addrc:
		return p, a, nil
	case <-p.exited:
		return p, "", fmt.Errorf("%s exited before listening (%v); its log:\n%s", name, p.err, tail(logf, 20))
	case <-time.After(10 * time.Second):
		return p, "", fmt.Errorf("%s did not say where it listens within 10s", name)
	}
}

// stop ends p: SIGTERM, up to 5s to exit, then SIGKILL. It is safe to call
// more than once.
func (ps *procs) stop(p *proc) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		fmt.Fprintf(os.Stderr, "overload: %s (pid %d) still running 5s after SIGTERM: SIGKILL\n", p.name, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stopAll stops every process still running, newest first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		ps.stop(list[i])
	}
}

// buildHoldfast builds ./cmd/holdfast of the module this harness belongs
// to into dir, and returns the binary's path.
func buildHoldfast(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the holdfast module: run from its tree, or pass -holdfast")
	}
	root := filepath.Dir(mod)
	bin := filepath.Join(dir, "holdfast")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/holdfast")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/holdfast: %w\n%s", err, out)
	}
	return bin, nil
}

// freePort asks the kernel for a free loopback port: it binds port 0 and
// lets go of it. Another program could take the port before holdfast binds
// it, but on a bench machine that does not happen.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
