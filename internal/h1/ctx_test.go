package h1

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReqContextCancel(t *testing.T) {
	c := new(reqContext)
	if c.Err() != nil {
		t.Fatal("a new context has ended")
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed before the end")
	default:
	}
	c.cancel()
	c.cancel() // a second end does nothing
	select {
	case <-done:
	default:
		t.Fatal("Done not closed by the end")
	}
	if c.Err() != context.Canceled || context.Cause(c) != context.Canceled {
		t.Fatalf("Err %v, Cause %v: want context.Canceled", c.Err(), context.Cause(c))
	}
	// Done asked for only after the end is closed too.
	late := new(reqContext)
	late.cancel()
	select {
	case <-late.Done():
	default:
		t.Fatal("Done of an ended context not closed")
	}
}

// TestReqContextDerived: contexts derived from a request's context end
// with it, through its AfterFunc method, and a derived one that ends first
// is no longer registered.
func TestReqContextDerived(t *testing.T) {
	c := new(reqContext)
	child, cancelChild := context.WithCancel(c)
	timed, cancelTimed := context.WithTimeout(c, time.Hour)
	defer cancelTimed()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	stopped := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Fatal("stop of a pending AfterFunc reported false")
	}
	cancelChild()
	c.mu.Lock()
	registered := len(c.after)
	c.mu.Unlock()
	if registered != 2 {
		t.Fatalf("%d functions registered after one derived context ended and one AfterFunc stopped, want 2", registered)
	}
	c.cancel()
	select {
	case <-timed.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived with a timeout did not end with its parent")
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run at the end")
	}
	if child.Err() != context.Canceled || timed.Err() != context.Canceled {
		t.Fatalf("derived contexts: %v, %v", child.Err(), timed.Err())
	}
	// Registered after the end: runs at once.
	again := make(chan struct{})
	if context.AfterFunc(c, func() { close(again) })() {
		t.Error("stop after the end reported true")
	}
	select {
	case <-again:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc on an ended context did not run")
	}
}

// TestReqContextWatch: the one watcher runs once at the end, on the
// goroutine that ends the context; a token removes only its own watcher;
// and a watcher removed before the end never runs.
func TestReqContextWatch(t *testing.T) {
	c := new(reqContext)
	var runs atomic.Int32
	t1 := c.WatchDone(func() { runs.Add(1) })
	if t1 == 0 {
		t.Fatal("WatchDone refused on a fresh context")
	}
	if c.WatchDone(func() { t.Error("a refused watcher ran") }) != 0 {
		t.Fatal("a second watcher was taken while the first is set")
	}
	if !c.UnwatchDone(t1) || c.UnwatchDone(t1) {
		t.Fatal("UnwatchDone: want true once, then false")
	}
	t2 := c.WatchDone(func() { runs.Add(10) })
	if t2 == 0 || t2 == t1 {
		t.Fatalf("second watch token %d (first %d)", t2, t1)
	}
	if c.UnwatchDone(t1) {
		t.Fatal("a stale token removed the current watcher")
	}
	c.cancel()
	if got := runs.Load(); got != 10 {
		t.Fatalf("watchers ran for %d, want only the second, once, before cancel returned (10)", got)
	}
	if c.UnwatchDone(t2) {
		t.Fatal("UnwatchDone after the watcher ran reported true")
	}
	if c.WatchDone(func() {}) != 0 {
		t.Fatal("WatchDone on an ended context took a watcher")
	}
}

// TestReqContextRace ends a context while watchers come and go and
// derived contexts are made: under -race, and every watcher either ran or
// was removed, never both.
func TestReqContextRace(t *testing.T) {
	for range 200 {
		c := new(reqContext)
		var set, ran, removed atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					tok := c.WatchDone(func() { ran.Add(1) })
					if tok == 0 {
						continue
					}
					set.Add(1)
					if c.UnwatchDone(tok) {
						removed.Add(1)
					}
					ctx, cancel := context.WithCancel(c)
					_ = ctx.Err()
					cancel()
				}
			}()
		}
		c.cancel()
		wg.Wait()
		if ran.Load() > 1 || set.Load() != ran.Load()+removed.Load() {
			t.Fatalf("%d watchers set, %d ran, %d removed: each must do one or the other, and at most one can run", set.Load(), ran.Load(), removed.Load())
		}
	}
}
