//go:build !linux

package h1

import "time"

// parker parks idle connections on Linux only (epoll); elsewhere each idle
// connection keeps its goroutine.
type parker struct{}

// parkSupported reports whether this build can park connections.
const parkSupported = false

func (p *parker) park(*Server, *conn, time.Time) bool        { return false }
func (p *parker) parkDormant(*Server, *conn, time.Time) bool { return false }
func (p *parker) unpark(*conn) bool                          { return false }
func (p *parker) closeDormant(*Server)                       {}
func (p *parker) close(*Server)                              {}
func (p *parker) dormantCount() int                          { return 0 }
