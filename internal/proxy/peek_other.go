//go:build !linux

package proxy

import (
	"net"
	"time"
)

// idleProbe is not implemented off Linux: the idle limits and the check of
// the read buffer at the end of each response still apply.
type idleProbe struct{}

func (p *idleProbe) init(net.Conn) {}

func (p *idleProbe) peek() (peekState, []byte) { return peekOpen, nil }

func (p *idleProbe) canWait() bool { return false }

func (p *idleProbe) wait() {}

func (p *idleProbe) writeWait([]byte, func()) (int, error, bool) { return 0, nil, false }

func (p *idleProbe) closedAgo() (time.Duration, bool) { return 0, false }
