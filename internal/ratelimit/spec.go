package ratelimit

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/time/rate"
)

// maxCount bounds the numbers in a rate and a burst, so that the arithmetic
// on them (tokens, microseconds in the Redis script) stays exact in a float64.
const maxCount = 1_000_000_000

// Rate is a number of requests per period, as written in the configuration:
// "100/s" is Rate{N: 100, Per: time.Second}. Its zero value is invalid.
type Rate struct {
	// N is the number of requests allowed per period, at least 1.
	N int
	// Per is the period: a second, a minute or an hour.
	Per time.Duration
}

// ParseRate parses a rate written "N/s", "N/m" or "N/h": a whole number of
// requests, at least 1, per second, minute or hour. Spaces around the parts
// are allowed ("100 / s"); fractions, other units and "100/2s" are errors.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q has no unit (write N/s, N/m or N/h, as in 100/s)", s)
	}
	num, unit = strings.TrimSpace(num), strings.TrimSpace(unit)
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("rate %q has an unknown unit %q (want s, m or h, as in 100/s)", s, unit)
	}
	n, err := strconv.Atoi(num)
	if err != nil || num == "" || num[0] < '0' || num[0] > '9' {
		return Rate{}, fmt.Errorf("rate %q does not start with a whole number of requests (as in 100/s)", s)
	}
	r := Rate{N: n, Per: per}
	if err := r.validate(); err != nil {
		return Rate{}, fmt.Errorf("rate %q: %w", s, err)
	}
	return r, nil
}

func (r Rate) validate() error {
	switch {
	case r.N < 1:
		return errors.New("the number of requests must be at least 1")
	case r.N > maxCount:
		return fmt.Errorf("the number of requests must be at most %d", maxCount)
	case r.Per != time.Second && r.Per != time.Minute && r.Per != time.Hour:
		return fmt.Errorf("the period %v is not a second, a minute or an hour", r.Per)
	}
	return nil
}

// String writes r as ParseRate reads it: "100/s".
func (r Rate) String() string {
	unit := "s"
	switch r.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.Itoa(r.N) + "/" + unit
}

// perSecond is r as a token bucket's fill rate.
func (r Rate) perSecond() rate.Limit {
	return rate.Limit(float64(r.N) / r.Per.Seconds())
}

// KeyKind says what a limit counts requests by.
type KeyKind uint8

// The kinds of key.
const (
	// KeyClientIP counts by client address, as the caller resolved it.
	KeyClientIP KeyKind = iota + 1
	// KeyHeader counts by the value of a request header.
	KeyHeader
	// KeyRoute counts every request of the route in one bucket.
	KeyRoute
)

// Key says what a limit counts requests by. Its zero value is invalid.
type Key struct {
	Kind KeyKind
	// Header is the header's canonical name, for KeyHeader only.
	Header string
}

// ParseKey parses a limit's key: "client_ip", "route" or "header:NAME", where
// NAME is a header field name, matched without regard to case.
func ParseKey(s string) (Key, error) {
	switch s {
	case "client_ip":
		return Key{Kind: KeyClientIP}, nil
	case "route":
		return Key{Kind: KeyRoute}, nil
	}
	name, ok := strings.CutPrefix(s, "header:")
	if !ok {
		return Key{}, fmt.Errorf("key %q is unknown (want client_ip, route or header:NAME, as in header:X-Api-Key)", s)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return Key{}, fmt.Errorf("key %q does not name a valid header (as in header:X-Api-Key)", s)
	}
	return Key{Kind: KeyHeader, Header: textproto.CanonicalMIMEHeaderKey(name)}, nil
}

func (k Key) validate() error {
	switch k.Kind {
	case KeyClientIP, KeyRoute:
		if k.Header != "" {
			return fmt.Errorf("key %s names a header", k)
		}
		return nil
	case KeyHeader:
		if !httpguts.ValidHeaderFieldName(k.Header) {
			return fmt.Errorf("key header:%q does not name a valid header", k.Header)
		}
		return nil
	}
	return fmt.Errorf("key kind %d is unknown", k.Kind)
}

// String writes k as ParseKey reads it: "client_ip", "route" or
// "header:X-Api-Key".
func (k Key) String() string {
	switch k.Kind {
	case KeyClientIP:
		return "client_ip"
	case KeyRoute:
		return "route"
	case KeyHeader:
		return "header:" + k.Header
	}
	return "key(" + strconv.Itoa(int(k.Kind)) + ")"
}

// Limit is one limit of a route: at most Rate requests for each value of
// Key, with bursts of up to Burst requests at once.
type Limit struct {
	Key  Key
	Rate Rate
	// Burst is the size of the token bucket: how many requests one key may
	// make at once after a quiet spell. Zero means Rate.N, the quota of one
	// period (100 at once for 100/s, 1000 for 1000/h).
	Burst int
}

// ParseLimit builds a Limit from the configuration's strings, as in
// ParseLimit("header:X-Api-Key", "100/s", 20). Its errors name the field.
func ParseLimit(key, rate string, burst int) (Limit, error) {
	k, err := ParseKey(key)
	if err != nil {
		return Limit{}, err
	}
	r, err := ParseRate(rate)
	if err != nil {
		return Limit{}, err
	}
	l := Limit{Key: k, Rate: r, Burst: burst}
	if err := l.Validate(); err != nil {
		return Limit{}, err
	}
	return l, nil
}

// Validate reports whether l can be enforced, and why not.
func (l Limit) Validate() error {
	if err := l.Key.validate(); err != nil {
		return err
	}
	if err := l.Rate.validate(); err != nil {
		return fmt.Errorf("rate %s: %w", l.Rate, err)
	}
	if l.Burst < 0 || l.Burst > maxCount {
		return fmt.Errorf("burst %d is out of range (want 0 to %d; 0 means the rate's N)", l.Burst, maxCount)
	}
	return nil
}

// burst is l.Burst with its default resolved.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate.N
	}
	return l.Burst
}

// String writes l for logs: "client_ip 100/s burst 20".
func (l Limit) String() string {
	return l.Key.String() + " " + l.Rate.String() + " burst " + strconv.Itoa(l.burst())
}
