package codegen

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// socks5 is a SOCKS5 proxy with username and password authentication
// (RFC 1928, RFC 1929) that connects every request to one address and
// records what it was asked: the programs' SOCKS handshake is checked
// against it, as curl's cannot be by the differential test.
type socks5 struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func newSOCKS5(t *testing.T, target string) *socks5 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c, target)
			}()
		}
	}()
	return s
}

func (s *socks5) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return ""
	}
	return s.seen[len(s.seen)-1]
}

func (s *socks5) serve(c net.Conn, target string) {
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			return nil
		}
		return b
	}
	hello := read(2)
	if hello == nil || hello[0] != 5 || read(int(hello[1])) == nil {
		return
	}
	c.Write([]byte{5, 2}) // username and password
	auth := read(2)
	if auth == nil {
		return
	}
	user := read(int(auth[1]))
	plen := read(1)
	if user == nil || plen == nil {
		return
	}
	pass := read(int(plen[0]))
	c.Write([]byte{1, 0})
	req := read(4)
	if req == nil || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1:
		host = net.IP(read(4)).String()
	case 3:
		host = string(read(int(read(1)[0])))
	case 4:
		host = net.IP(read(16)).String()
	}
	port := read(2)
	if port == nil {
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, fmt.Sprintf("%s:%s %s:%d", user, pass, host, binary.BigEndian.Uint16(port)))
	s.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	go io.Copy(up, c)
	io.Copy(c, up)
}
