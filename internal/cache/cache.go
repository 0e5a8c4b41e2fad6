package cache

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Config configures a Cache. Its zero value is ready to use.
type Config struct {
	// MaxSize bounds the bytes of all stored entries (bodies, headers
	// and a fixed overhead each). Zero or negative means 256 MiB.
	MaxSize int64
	// MaxObject bounds one response's body; larger ones are not
	// stored. Zero or negative means 8 MiB.
	MaxObject int64
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

const (
	defaultMaxSize   = 256 << 20
	defaultMaxObject = 8 << 20
	// maxVariants bounds the Vary variants kept under one key, so that
	// a response varying on a field with endless values (User-Agent)
	// cannot crowd a key with thousands of copies; the oldest goes.
	maxVariants = 32
)

func (c Config) maxSize() int64 {
	if c.MaxSize <= 0 {
		return defaultMaxSize
	}
	return c.MaxSize
}

func (c Config) maxObject() int64 {
	if c.MaxObject <= 0 {
		return defaultMaxObject
	}
	return c.MaxObject
}

func (c Config) now() func() time.Time {
	if c.Now == nil {
		return time.Now
	}
	return c.Now
}

// Cache is a shared HTTP cache in memory. Its methods are safe for
// concurrent use. Create one with New.
type Cache struct {
	store     *otter.Cache[string, *variants]
	now       func() time.Time
	maxSize   int64
	maxObject int64
	closed    atomic.Bool

	mu      sync.Mutex
	flights map[string]*flight

	hits, misses, revalidated, stale, collapsed, bypassed atomic.Int64
	stored, evicted                                       atomic.Int64
}

// variants is the value under one primary key: the stored responses
// that differ by their Vary-selected request fields, newest first. A
// variants is never changed once in the store; a write replaces it.
type variants struct {
	list []*Entry
}

func (v *variants) weight() uint32 {
	var n int64
	for _, e := range v.list {
		n += e.size
	}
	return uint32(min(n, math.MaxUint32))
}

// New returns an empty Cache configured by c.
func New(c Config) *Cache {
	cache := &Cache{
		now:       c.now(),
		maxSize:   c.maxSize(),
		maxObject: c.maxObject(),
		flights:   make(map[string]*flight),
	}
	cache.store = otter.Must(&otter.Options[string, *variants]{
		MaximumWeight: uint64(cache.maxSize),
		Weigher:       func(_ string, v *variants) uint32 { return v.weight() },
		OnDeletion: func(e otter.DeletionEvent[string, *variants]) {
			if e.WasEvicted() {
				cache.evicted.Add(1)
			}
		},
	})
	return cache
}

// Close drops every entry; later Stores are refused and Lookups miss.
// Waiters of Lead are not released: their leaders still call done.
func (c *Cache) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.store.InvalidateAll()
	c.store.StopAllGoroutines()
}

// Lookup returns the stored response for r under key whose
// Vary-selected request fields match r's (RFC 9111 4.1), the newest if
// several do, or nil. Only GET and HEAD are answered from the cache; a
// HEAD is answered from a stored GET.
func (c *Cache) Lookup(r *http.Request, key string) *Entry {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || c.closed.Load() {
		return nil
	}
	v, ok := c.store.GetIfPresent(key)
	if !ok {
		return nil
	}
	for _, e := range v.list {
		if e.matches(r) {
			return e
		}
	}
	return nil
}

// Store keeps resp, the answer to r received with body, under key: its
// header cloned without hop-by-hop fields, and reqTime and respTime for
// its age. It stores nothing and returns false when Storable refuses
// the response, when the body is over Config.MaxObject or shorter than
// the Content-Length announced (an interrupted transfer), or after
// Close. A stored response replaces the one under key with the same
// Vary variant.
func (c *Cache) Store(r *http.Request, key string, resp *http.Response, body []byte, reqTime, respTime time.Time) bool {
	if c.closed.Load() || int64(len(body)) > c.maxObject {
		return false
	}
	if resp.ContentLength >= 0 && resp.ContentLength != int64(len(body)) {
		return false
	}
	if ok, _ := Storable(r, resp); !ok {
		return false
	}
	e := newEntry(key, r, resp.StatusCode, storedHeader(resp.Header), body, reqTime, respTime)
	return c.put(e)
}

func (c *Cache) put(e *Entry) bool {
	if e.varyStar || e.size > c.maxSize {
		return false
	}
	e.clock = c.now
	c.store.Compute(e.Key, func(old *variants, found bool) (*variants, otter.ComputeOp) {
		list := []*Entry{e}
		if found {
			for _, o := range old.list {
				if !o.sameVariant(e) && len(list) < maxVariants {
					list = append(list, o)
				}
			}
		}
		return &variants{list: list}, otter.WriteOp
	})
	c.stored.Add(1)
	return true
}

// remove drops e's variant from key.
func (c *Cache) remove(e *Entry) {
	c.store.ComputeIfPresent(e.Key, func(old *variants) (*variants, otter.ComputeOp) {
		var list []*Entry
		for _, o := range old.list {
			if !o.sameVariant(e) {
				list = append(list, o)
			}
		}
		if len(list) == 0 {
			return nil, otter.InvalidateOp
		}
		return &variants{list: list}, otter.WriteOp
	})
}

// notUpdated are the fields a 304 does not change in the stored
// response (RFC 9111 3.2): its framing and the encoding its stored body
// depends on.
var notUpdated = map[string]bool{
	"Content-Length": true, "Content-Range": true, "Content-Encoding": true,
	"Transfer-Encoding": true,
	// They describe the stored body itself, which a 304 does not replace:
	// the ETag that selected it, and its digest.
	"Etag": true, "Content-Md5": true,
}

// sessionField are fields a 304 may carry for the client that asked
// (a renewed session cookie) and that must never go into the shared copy:
// the caller passes them to that client alone. (Set-Cookie2, obsolete
// since RFC 6265 and read by no browser, is updated as the conformance
// suite expects.)
var sessionField = map[string]bool{"Set-Cookie": true}

// Refresh applies resp304, a 304 answer to the conditional request that
// revalidated e, and stores the result under key (RFC 9111 4.3.4): the
// stored fields are replaced by those the 304 carries, except framing
// fields, and its times (and so its age) restart from reqTime and
// respTime. It returns the refreshed entry, which the caller serves;
// when the 304 adds no-store or private the entry is served once but
// removed from the store.
func (c *Cache) Refresh(r *http.Request, key string, e *Entry, resp304 *http.Response, reqTime, respTime time.Time) *Entry {
	h := e.Header.Clone()
	fresh := storedHeader(resp304.Header)
	for k, vs := range fresh {
		if !notUpdated[k] && !sessionField[k] {
			h[k] = append([]string(nil), vs...)
		}
	}
	// Age and Date describe the old response: keep them only if the 304
	// sends its own, or the new age would count the old one twice.
	for _, k := range []string{"Age", "Date"} {
		if _, ok := fresh[k]; !ok {
			h.Del(k)
		}
	}
	ne := newEntry(key, r, e.Status, h, e.Body, reqTime, respTime)
	ne.clock = c.now
	if ne.cc.Has("no-store") || ne.cc.Has("private") || ne.varyStar {
		c.remove(e)
		return ne
	}
	if !c.closed.Load() {
		c.put(ne)
	}
	return ne
}

// SafeMethod reports whether m is safe (RFC 9110 9.2.1): it does not
// change the resource, and so invalidates nothing stored.
func SafeMethod(m string) bool { return safeMethods[m] }

// safeMethods do not invalidate (RFC 9110 9.2.1).
var safeMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true, http.MethodTrace: true,
}

// Invalidate removes what an unsafe request r (POST, PUT, DELETE,
// PATCH, or any method not known to be safe) may have changed once its
// response resp is not an error (2xx or 3xx): the entries for r's URL
// and for resp's Location and Content-Location when they have r's host
// (RFC 9111 4.4). For a safe method it does nothing.
func (c *Cache) Invalidate(r *http.Request, scheme string, resp *http.Response) {
	if safeMethods[r.Method] || resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return
	}
	c.store.Invalidate(KeyOf(r, scheme))
	for _, f := range []string{"Location", "Content-Location"} {
		if k, ok := sameHostKey(r, scheme, resp.Header.Get(f)); ok {
			c.store.Invalidate(k)
		}
	}
}

// Purge removes the entries whose primary key (see KeyOf; e.g.
// "https://example.com/a?b") equals target or, with prefix, starts with
// it, and returns how many keys it removed.
func (c *Cache) Purge(target string, prefix bool) int {
	if !prefix {
		if _, ok := c.store.Invalidate(target); ok {
			return 1
		}
		return 0
	}
	var keys []string
	for k := range c.store.Keys() {
		if strings.HasPrefix(k, target) {
			keys = append(keys, k)
		}
	}
	n := 0
	for _, k := range keys {
		if _, ok := c.store.Invalidate(k); ok {
			n++
		}
	}
	return n
}
