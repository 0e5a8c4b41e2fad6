package proxy

import "testing"

// TestStoreBudget: bodies collected for the cache at once stay within the
// budget; a sink past it gives up storing and gives its share back, and
// every sink gives its share back when released.
func TestStoreBudget(t *testing.T) {
	b := &storeBudget{max: 10}
	a := &storeSink{max: 100, budget: b}
	c := &storeSink{max: 100, budget: b}
	a.write(make([]byte, 6))
	c.write(make([]byte, 6))
	if a.over || !c.over || b.used.Load() != 6 {
		t.Fatalf("a over %v, c over %v, used %d: want a kept, c dropped, 6 used", a.over, c.over, b.used.Load())
	}
	a.write(make([]byte, 3))
	if a.over || a.buf.Len() != 9 || b.used.Load() != 9 {
		t.Fatalf("a over %v, %d bytes, used %d: want 9 kept", a.over, a.buf.Len(), b.used.Load())
	}
	a.write(make([]byte, 2)) // past the budget: dropped, share given back
	if !a.over || a.buf.Len() != 0 || b.used.Load() != 0 {
		t.Fatalf("a over %v, %d bytes, used %d: want dropped, 0 used", a.over, a.buf.Len(), b.used.Load())
	}
	d := &storeSink{max: 4, budget: b}
	d.write(make([]byte, 5)) // past its own max
	if !d.over || b.used.Load() != 0 {
		t.Fatalf("over max_object: over %v, used %d", d.over, b.used.Load())
	}
	e := &storeSink{max: 100, budget: b}
	e.write(make([]byte, 7))
	e.release()
	e.release()
	if b.used.Load() != 0 {
		t.Errorf("after release: used %d, want 0", b.used.Load())
	}
}
