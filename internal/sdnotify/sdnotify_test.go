package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeManager is the service manager's end: a datagram socket that
// collects what is sent to it.
func fakeManager(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("nothing received: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	mgr := fakeManager(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	n := FromEnv()
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	for _, st := range []string{Ready, Reloading(), Ready, Stopping} {
		if err := n.Notify(st); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, mgr); got != st {
			t.Errorf("received %q, want %q", got, st)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "@holdfast-test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000")
	mgr := fakeManager(t, "\x00"+name[1:])
	n := &Notifier{addr: name}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, mgr); got != Ready {
		t.Errorf("received %q", got)
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	r := Reloading()
	if !strings.HasPrefix(r, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("Reloading() = %q", r)
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() || n.Notify(Ready) != nil {
		t.Error("a notifier without a socket must do nothing")
	}
	var zero Notifier
	if zero.Notify(Ready) != nil {
		t.Error("the zero Notifier must do nothing")
	}
}

func TestBadSocketName(t *testing.T) {
	n := &Notifier{addr: "relative/path"}
	if err := n.Notify(Ready); err == nil {
		t.Error("a relative NOTIFY_SOCKET must be an error")
	}
}
