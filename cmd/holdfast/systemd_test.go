package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on the shipped unit,
// with its paths pointed at the binary built for these tests (verify checks
// that the commands exist). CI installs systemd, so there a missing
// systemd-analyze is a failure; elsewhere the test skips.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed (apt-get install systemd)")
		}
		t.Skip("systemd-analyze is not installed: apt-get install systemd to run this test")
	}
	unit, err := os.ReadFile("../../deploy/systemd/holdfast.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{"Type=notify", "ExecReload=", "KillSignal=SIGTERM", "Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "DynamicUser=yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "holdfast.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/holdfast", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestServeNotifiesSystemd runs "holdfast serve" as systemd would with
// Type=notify, against a fake service manager's socket: READY=1 once it
// listens, RELOADING=1 then READY=1 around a reload (a broken file too),
// STOPPING=1 when SIGTERM starts the drain.
func TestServeNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	next := func() string {
		mgr.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1024)
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	b := testutil.Backend(t, nil)
	addr := testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "holdfast.yaml")
	writeConfig(t, cfg, addr, b.URL)
	p := startProcess(t, []string{"NOTIFY_SOCKET=" + sock}, "serve", "-c", cfg)

	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if code, _, err := get("http://" + addr + "/"); err != nil || code != 200 {
		t.Fatalf("after READY=1: %d %v", code, err)
	}
	for _, broken := range []bool{false, true} {
		if broken {
			os.WriteFile(cfg, []byte("listen: [\n"), 0o644)
		}
		p.signal(t, syscall.SIGHUP)
		if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Fatalf("on SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", got)
		}
		if got := next(); got != "READY=1" {
			t.Fatalf("after the reload (broken file: %v): %q, want READY=1", broken, got)
		}
	}
	p.signal(t, syscall.SIGTERM)
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q, want STOPPING=1", got)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after SIGTERM")
	}
}
