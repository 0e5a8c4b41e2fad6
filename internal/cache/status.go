package cache

import (
	"strconv"
	"strings"
	"time"
)

// Name identifies holdfast's member in a Cache-Status field.
const Name = "holdfast"

// Values of the fwd parameter of Cache-Status (RFC 9211 2.2): why the
// request went forward.
const (
	FwdBypass   = "bypass"    // the cache was configured not to handle this request
	FwdMethod   = "method"    // the request method's semantics require it
	FwdURIMiss  = "uri-miss"  // no stored response for the URI
	FwdVaryMiss = "vary-miss" // stored responses for the URI, none for these request fields
	FwdMiss     = "miss"      // no usable stored response, reason unspecified
	FwdRequest  = "request"   // the request's directives (no-cache, max-age...) forced it
	FwdStale    = "stale"     // the stored response was stale and needed validation
	FwdPartial  = "partial"   // only part of the response was stored
)

// Status is one member of a Cache-Status field (RFC 9211). Its zero
// value formats as the bare cache name.
type Status struct {
	// Hit: the response came from the cache without going forward.
	// When set, the parameters that only go with fwd are left out.
	Hit bool
	// Fwd says why the request went forward (a Fwd constant).
	Fwd string
	// FwdStatus is the status the next hop answered; 0: not sent.
	FwdStatus int
	// TTL is the response's remaining freshness (negative when
	// stale), sent in whole seconds when HasTTL.
	TTL    time.Duration
	HasTTL bool
	// Stored: the response forwarded was stored.
	Stored bool
	// Collapsed: the request was collapsed with another going forward.
	Collapsed bool
	// Key is the cache key, for debugging; "": not sent.
	Key string
	// Detail is free-form detail (a cause: "connection_refused").
	Detail string
}

// String formats s as a Cache-Status list member, e.g.
// `holdfast; fwd=stale; fwd-status=502; detail="connection_refused"`.
func (s Status) String() string {
	var b strings.Builder
	b.WriteString(Name)
	if s.Hit {
		b.WriteString("; hit")
	} else if s.Fwd != "" {
		b.WriteString("; fwd=")
		b.WriteString(s.Fwd)
		if s.FwdStatus != 0 {
			b.WriteString("; fwd-status=")
			b.WriteString(strconv.Itoa(s.FwdStatus))
		}
		if s.Stored {
			b.WriteString("; stored")
		}
		if s.Collapsed {
			b.WriteString("; collapsed")
		}
	}
	if s.HasTTL {
		b.WriteString("; ttl=")
		b.WriteString(strconv.FormatInt(int64(s.TTL/time.Second), 10))
	}
	if s.Key != "" {
		b.WriteString("; key=")
		writeSFString(&b, s.Key)
	}
	if s.Detail != "" {
		b.WriteString("; detail=")
		writeSFString(&b, s.Detail)
	}
	return b.String()
}

// writeSFString writes v as a Structured Field string (RFC 8941 3.3.3):
// printable ASCII only, '"' and '\' escaped; anything else becomes '?'.
func writeSFString(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// CacheStatus formats a Cache-Status member (RFC 9211) from the common
// parameters: hit, or fwd (a Fwd constant, "" for none) with stored;
// detail ("" for none); and ttl, sent when there is a stored response
// to speak of (hit, stored, or fwd=stale). For fwd-status, collapsed or
// key, build a Status.
func CacheStatus(hit bool, fwd string, stored bool, detail string, ttl time.Duration) string {
	return Status{
		Hit: hit, Fwd: fwd, Stored: stored, Detail: detail,
		TTL: ttl, HasTTL: hit || stored || fwd == FwdStale,
	}.String()
}
