package cli

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal and returns its two ends: the one a
// program reads as its terminal, and the one that types into it.
func openPTY(t *testing.T) (tty, typist *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	var unlock int32
	var n uint32
	if err := ioctl(ptmx, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		ptmx.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	if err := ioctl(ptmx, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		ptmx.Close()
		t.Skipf("naming the pseudo-terminal: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pts.Close(); ptmx.Close() })
	return pts, ptmx
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// TestConvertStdinTerminalHint: on a terminal with no command after "--",
// convert says on stderr, once, that it reads standard input and how to
// end it, then converts what is typed up to Ctrl-D.
func TestConvertStdinTerminalHint(t *testing.T) {
	tty, typist := openPTY(t)
	// The terminal echoes what is typed: read it away so that it never
	// fills up.
	go io.Copy(io.Discard, typist)

	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- convertCmd(nil, tty, &out, &errOut) }()
	// Ctrl-D at the start of a line is the end of input on a terminal.
	if _, err := typist.WriteString("curl http://h/\n\x04"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		// Closing the terminal ends the read, and the goroutine with it.
		tty.Close()
		typist.Close()
		t.Fatal("convert did not finish after Ctrl-D")
	}
	if errOut.String() != stdinHint {
		t.Errorf("stderr = %q, want the hint %q alone", errOut.String(), stdinHint)
	}
	if !strings.Contains(stdinHint, "Ctrl-D") || !strings.Contains(stdinHint, "holdfast convert -- curl") {
		t.Errorf("the hint %q does not say how to end the input or how to give the command instead", stdinHint)
	}
	if !strings.Contains(out.String(), `"http://h/"`) {
		t.Errorf("stdout lacks the program for what was typed:\n%s", out.String())
	}
}
