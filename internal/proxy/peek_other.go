//go:build !linux

package proxy

import "net"

// peerClosed is not implemented off Linux: the idle limits still apply.
func peerClosed(net.Conn) bool { return false }
