//go:build linux

// Command loopfloor is not a proxy: it is the smallest HTTP/1.1 forwarder
// that an event loop in Go can be, for bench/run.sh (TARGETS=loopfloor), to
// measure how much CPU per request is left to a proxy's own work once the
// I/O is done the way nginx does it: one thread, one epoll set, and
// non-blocking system calls made directly, with no goroutine per
// connection and none of the runtime's poller.
//
//	loopfloor -listen 127.0.0.1:PORT -upstreams 127.0.0.1:P1,127.0.0.1:P2
//
// Each client connection gets an upstream connection of its own, dialled
// when it is accepted, in turn from the upstreams. A request is forwarded
// once its head is read (up to the empty line: it must be a request
// without a body, as wrk's are), unchanged; a response is forwarded once
// its head and its Content-Length bytes are read, unchanged. It parses
// nothing else, adds no header, keeps no log, retries nothing and assumes
// each write goes at once: the bench's requests and responses are small.
// Anything it does not expect closes both connections. It runs until
// killed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// pair is a client connection and its upstream connection, with the bytes
// read from each and not yet forwarded.
type pair struct {
	client, up int
	req, resp  []byte
}

func main() {
	listen := flag.String("listen", "", "host:port to listen on (required)")
	upstreams := flag.String("upstreams", "", "comma-separated host:port of the upstreams (required)")
	flag.Parse()
	if *listen == "" || *upstreams == "" {
		flag.Usage()
		os.Exit(2)
	}
	err := run(*listen, strings.Split(*upstreams, ","))
	fmt.Fprintln(os.Stderr, "loopfloor:", err)
	os.Exit(1)
}

// The loop, its set and its connections.
type loop struct {
	ep        int
	ln        int
	upstreams []string
	next      int
	pairs     map[int]*pair // by either descriptor
	buf       []byte
}

// run serves until an error stops it.
func run(listen string, upstreams []string) error {
	// One thread does everything, as an nginx worker does.
	runtime.LockOSThread()
	lfd, err := listenFD(listen)
	if err != nil {
		return err
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	l := &loop{ep: ep, ln: lfd, upstreams: upstreams, pairs: map[int]*pair{}, buf: make([]byte, 16384)}
	if err := l.watch(lfd); err != nil {
		return err
	}
	fmt.Printf("listening %s\n", listen)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			if fd := int(ev.Fd); fd == lfd {
				if err := l.accept(); err != nil {
					return err
				}
			} else if p := l.pairs[fd]; p != nil {
				l.readable(p, fd)
			}
		}
	}
}

// listenFD returns a non-blocking listening socket on addr, its descriptor
// the loop's own.
func listenFD(addr string) (int, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return -1, err
	}
	defer ln.Close()
	return ownFD(ln.(*net.TCPListener))
}

// ownFD returns a non-blocking duplicate of c's descriptor that nothing in
// Go's runtime knows of.
func ownFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("fcntl: %w", err)
	}
	return fd, nil
}

func (l *loop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// accept takes every waiting client connection and dials its upstream.
// An error other than "none left" stops the measurement: the listener
// would stay readable and the loop spin.
func (l *loop) accept() error {
	for {
		cfd, _, err := syscall.Accept4(l.ln, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err == syscall.EAGAIN || err == syscall.EINTR || err == syscall.ECONNABORTED {
			return nil
		}
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		syscall.SetsockoptInt(cfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		ufd, err := l.dial()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loopfloor:", err)
			syscall.Close(cfd)
			continue
		}
		p := &pair{client: cfd, up: ufd}
		l.pairs[cfd], l.pairs[ufd] = p, p
		if l.watch(cfd) != nil || l.watch(ufd) != nil {
			l.close(p)
		}
	}
}

// dial connects to the next upstream in turn. It blocks, which only a new
// client connection pays.
func (l *loop) dial() (int, error) {
	addr := l.upstreams[l.next%len(l.upstreams)]
	l.next++
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	return ownFD(c.(*net.TCPConn))
}

func (l *loop) close(p *pair) {
	syscall.Close(p.client)
	syscall.Close(p.up)
	delete(l.pairs, p.client)
	delete(l.pairs, p.up)
}

var endOfHead = []byte("\r\n\r\n")

// readable reads what fd has and forwards every whole request or response.
func (l *loop) readable(p *pair, fd int) {
	n, err := syscall.Read(fd, l.buf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	if n <= 0 {
		l.close(p) // the end, or an error
		return
	}
	if fd == p.client {
		p.req = append(p.req, l.buf[:n]...)
		for {
			i := bytes.Index(p.req, endOfHead)
			if i < 0 {
				return
			}
			if !l.send(p, p.up, p.req[:i+4]) {
				return
			}
			p.req = append(p.req[:0], p.req[i+4:]...)
		}
	}
	p.resp = append(p.resp, l.buf[:n]...)
	for {
		end, ok := responseEnd(p.resp)
		if !ok {
			return
		}
		if end < 0 {
			l.close(p)
			return
		}
		if !l.send(p, p.client, p.resp[:end]) {
			return
		}
		p.resp = append(p.resp[:0], p.resp[end:]...)
	}
}

// send writes b to fd in one call, or closes the pair and reports false.
func (l *loop) send(p *pair, fd int, b []byte) bool {
	if n, err := syscall.Write(fd, b); err != nil || n != len(b) {
		l.close(p)
		return false
	}
	return true
}

// responseEnd returns where the response at the start of b ends, and
// whether it is all there; -1 when it has no Content-Length.
func responseEnd(b []byte) (int, bool) {
	i := bytes.Index(b, endOfHead)
	if i < 0 {
		return 0, false
	}
	head := b[:i+2]
	for {
		eol := bytes.Index(head, crlf)
		if eol < 0 {
			return -1, true
		}
		line := head[:eol]
		head = head[eol+2:]
		if len(line) < len(contentLength) || !bytes.EqualFold(line[:len(contentLength)], contentLength) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):])))
		if err != nil || n < 0 {
			return -1, true
		}
		if len(b) < i+4+n {
			return 0, false
		}
		return i + 4 + n, true
	}
}

var (
	crlf          = []byte("\r\n")
	contentLength = []byte("content-length:")
)
