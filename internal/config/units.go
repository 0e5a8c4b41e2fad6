package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size units, binary (KiB = 1024) and decimal (kB = 1000), matched without
// regard to case. A bare number is bytes.
const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
	tib = 1 << 40
)

// ParseSize parses a byte size: a whole number optionally followed by a unit,
// "B", "KiB", "MiB", "GiB", "TiB" (powers of 1024) or "kB", "MB", "GB", "TB"
// (powers of 1000). Units are matched without regard to case and may be
// separated from the number by spaces: "64KiB", "10 MiB", "512KB", "1024".
// Negative sizes, fractions and nginx's one-letter units ("1m") are errors.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	unit := strings.TrimSpace(t[i:])
	if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
		return 0, fmt.Errorf("size %q is not a whole number (write 1536KiB, not 1.5MiB)", s)
	}
	var mult int64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "kib":
		mult = kib
	case "mib":
		mult = mib
	case "gib":
		mult = gib
	case "tib":
		mult = tib
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	case "k", "m", "g", "t":
		return 0, fmt.Errorf("size %q has an ambiguous unit %q (write %s%siB for powers of 1024 or %s%sB for powers of 1000)",
			s, unit, t[:i], strings.ToUpper(unit), t[:i], strings.ToUpper(unit))
	default:
		return 0, fmt.Errorf("size %q has an unknown unit %q (want B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)", s, unit)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// FormatSize writes n in the largest binary unit that holds it exactly
// ("64KiB", "1MiB"), or as a bare number of bytes. ParseSize reads it back.
func FormatSize(n int64) string {
	if n > 0 {
		for _, u := range []struct {
			size int64
			name string
		}{{tib, "TiB"}, {gib, "GiB"}, {mib, "MiB"}, {kib, "KiB"}} {
			if n%u.size == 0 {
				return strconv.FormatInt(n/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseDuration parses a non-negative Go duration ("5s", "250ms", "1m30s",
// "1h"). A bare "0" is zero; any other number needs a unit.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("duration %q has no unit (write %ss or %sms)", s, t, t)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a number and a unit: ns, us, ms, s, m, h)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// formatDuration writes d as ParseDuration reads it, without the trailing
// zero units time.Duration.String adds ("5m", not "5m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// parsePercent parses "20", "20.5" or "20%" as a number from 0 to 100.
func parsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid percentage %q", s)
	}
	if f < 0 || f > 100 {
		return 0, fmt.Errorf("percentage %s is out of range 0 to 100", s)
	}
	return f, nil
}

// errStatusRange is the shape every status range error shares.
var errStatusRange = errors.New(`want a status like "200" or a range like "200-399", between 100 and 599`)

// ParseStatusRange parses an expected status for health checks: one code
// ("200") or an inclusive range ("200-399"), each from 100 to 599.
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err = parseStatus(a)
	if err != nil {
		return 0, 0, fmt.Errorf("status %q: %w", s, errStatusRange)
	}
	hi = lo
	if isRange {
		if hi, err = parseStatus(b); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("status %q: %w", s, errStatusRange)
		}
	}
	return lo, hi, nil
}

func parseStatus(s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 3 {
		return 0, errStatusRange
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, errStatusRange
	}
	return n, nil
}
