// Package sdnotify tells systemd (or any service manager speaking its
// notify protocol) what a service is doing: ready, reloading, stopping. It
// is a no-op when the service was not started with NOTIFY_SOCKET set.
//
// The protocol is one datagram of newline-separated KEY=VALUE lines to the
// unix socket named by NOTIFY_SOCKET (a path, or an abstract name written
// with a leading "@"). See sd_notify(3).
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// The states holdfast sends.
const (
	// Ready: the listeners are bound and requests are served.
	Ready = "READY=1"
	// Stopping: shutdown began; requests in flight are draining.
	Stopping = "STOPPING=1"
)

// Reloading says a reload began, with the monotonic timestamp that
// systemd's notify-reload protocol asks for. Send Ready when it ends,
// whether it succeeded or not.
func Reloading() string {
	us, ok := monotonicUsec()
	if !ok {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", us)
}

// Notifier sends states to one socket. The zero value sends nothing.
type Notifier struct {
	addr string // "" when there is no service manager to tell
}

// FromEnv returns a Notifier for the socket in NOTIFY_SOCKET, or one that
// sends nothing when it is unset. It unsets NOTIFY_SOCKET, so that child
// processes do not speak for this one.
func FromEnv() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return &Notifier{addr: addr}
}

// Enabled reports whether states are sent anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Notify sends state (lines of KEY=VALUE). It does nothing, and returns
// nil, when there is no socket to send to.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	if strings.TrimSpace(state) == "" {
		return errors.New("sdnotify: empty state")
	}
	name := n.addr
	if name[0] == '@' {
		name = "\x00" + name[1:] // the abstract namespace
	} else if name[0] != '/' {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract name", n.addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}
