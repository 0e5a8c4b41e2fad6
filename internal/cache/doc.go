// Package cache is holdfast's shared HTTP cache: RFC 9111 caching, the
// RFC 5861 stale-while-revalidate and stale-if-error extensions, and
// RFC 9211 Cache-Status.
//
// The proxy drives it; the package decides nothing on its own. For a GET
// or HEAD it computes the key (KeyOf), looks up a stored response
// (Lookup) and asks how it may answer (Entry.Usable): fresh, stale while
// a background revalidation runs, only after a conditional request
// (Entry.Conditional, then Cache.Refresh on 304), or not at all. Misses
// on one key are collapsed behind one upstream request (Cache.Lead). A
// response that may be kept (Storable) is stored (Cache.Store); an
// upstream failure may be hidden behind a stale entry
// (Entry.StaleIfError); an unsafe method's success invalidates
// (Cache.Invalidate). Entry.WriteTo answers the client, with Age, the
// client's own conditionals and byte ranges.
//
// # Storage
//
// Entries live in memory in github.com/maypok86/otter/v2, bounded by
// bytes: each key weighs the bytes of its stored responses. Otter was
// chosen over ristretto because a proxy cache wants every response it
// decides to store to be stored, and readable by the next request:
// ristretto's Set is asynchronous and its admission policy may drop a
// new entry outright, so a hot new URL could miss again and again,
// while otter writes synchronously and always admits a new entry (its
// adaptive W-TinyLFU policy first places it in a small window and
// judges it by frequency only when evicting). Otter also supports
// per-entry weights directly and scales well under concurrent reads.
// (Otter v1 evicted by S3-FIFO; v2 uses adaptive W-TinyLFU.)
//
// # Choices the RFCs leave open
//
// A response with Set-Cookie is stored only when public or s-maxage say
// it is meant for everyone. Heuristic freshness is 10% of the time since
// Last-Modified, at most a day. A response with no freshness is stored
// only when it has a validator to revalidate it with. Ranges are served
// from stored full responses; partial responses are never stored.
package cache
