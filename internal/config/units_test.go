package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"64KiB", 64 << 10, ""},
		{"64kib", 64 << 10, ""},
		{"10MiB", 10 << 20, ""},
		{"10 MiB", 10 << 20, ""},
		{" 1GiB ", 1 << 30, ""},
		{"2TiB", 2 << 40, ""},
		{"512KB", 512_000, ""},
		{"512kB", 512_000, ""},
		{"3MB", 3_000_000, ""},
		{"1GB", 1_000_000_000, ""},
		{"1TB", 1_000_000_000_000, ""},
		{"100B", 100, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"8388608TiB", 0, "too large"},
		{"9223372036854775807", math.MaxInt64, ""},
		{"9223372036854775808", 0, "too large"},
		{"-1", 0, "negative"},
		{"-1KiB", 0, "negative"},
		{"1.5MiB", 0, "not a whole number"},
		{"1m", 0, "ambiguous unit"},
		{"1k", 0, "ambiguous unit"},
		{"1Mb/s", 0, "unknown unit"},
		{"1PiB", 0, "unknown unit"},
		{"", 0, "does not start with a number"},
		{"MiB", 0, "does not start with a number"},
		{"0x10", 0, "unknown unit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseSize(%q) = %d, %v, want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatSizeRoundTrip(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1023, "1023"},
		{1024, "1KiB"},
		{1536, "1536"},
		{64 << 10, "64KiB"},
		{1 << 20, "1MiB"},
		{1<<20 + 1024, "1025KiB"},
		{3 << 30, "3GiB"},
		{5 << 40, "5TiB"},
		{math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		got := FormatSize(tt.n)
		if got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
		if back, err := ParseSize(got); err != nil || back != tt.n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.n, back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"0", 0, ""},
		{"0s", 0, ""},
		{"5s", 5 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"2h", 2 * time.Hour, ""},
		{"100us", 100 * time.Microsecond, ""},
		{" 5s ", 5 * time.Second, ""},
		{"5", 0, "has no unit (write 5s or 5ms)"},
		{"1.5", 0, "has no unit"},
		{"-1s", 0, "negative"},
		{"1d", 0, "invalid duration"},
		{"5 s", 0, "invalid duration"},
		{"", 0, "invalid duration"},
		{"s", 0, "invalid duration"},
		{"9999999h", 0, "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseDuration(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{time.Nanosecond, "1ns"},
		{250 * time.Millisecond, "250ms"},
		{5 * time.Second, "5s"},
		{60 * time.Second, "1m"},
		{90 * time.Second, "1m30s"},
		{300 * time.Second, "5m"},
		{time.Hour, "1h"},
		{time.Hour + time.Minute, "1h1m"},
		{time.Hour + time.Second, "1h0m1s"},
		{math.MaxInt64, "2562047h47m16.854775807s"},
	}
	for _, tt := range tests {
		got := formatDuration(tt.d)
		if got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := ParseDuration(got); err != nil || back != tt.d {
			t.Errorf("ParseDuration(formatDuration(%v)) = %v, %v", tt.d, back, err)
		}
	}
}

// TestScalarsInYAML checks how sizes, durations and percentages written in
// YAML decode, quoted or not.
func TestScalarsInYAML(t *testing.T) {
	tests := []struct {
		retry   string
		get     func(Retry) any
		want    any
		wantErr string
	}{
		{"body_buffer: 1024", func(r Retry) any { return r.BodyBuffer }, int64(1024), ""},
		{`body_buffer: "1024"`, func(r Retry) any { return r.BodyBuffer }, int64(1024), ""},
		{"body_buffer: 0x400", func(r Retry) any { return r.BodyBuffer }, int64(1024), ""},
		{"body_buffer: 64KiB", func(r Retry) any { return r.BodyBuffer }, int64(64 << 10), ""},
		{"body_buffer: 512KB", func(r Retry) any { return r.BodyBuffer }, int64(512_000), ""},
		{"body_buffer: -1", nil, nil, "size -1 is negative"},
		{"body_buffer: 1e6", nil, nil, "want a size"},
		{"body_buffer: true", nil, nil, "want a size"},
		{"timeout: 0", func(r Retry) any { return r.Timeout }, time.Duration(0), ""},
		{"timeout: 1m30s", func(r Retry) any { return r.Timeout }, 90 * time.Second, ""},
		{`timeout: "250ms"`, func(r Retry) any { return r.Timeout }, 250 * time.Millisecond, ""},
		{"timeout: 10", nil, nil, "has no unit"},
		{"timeout: 1.5", nil, nil, "has no unit"},
		{"timeout: -1s", nil, nil, "negative"},
		{"timeout: {}", nil, nil, "want a duration like 5s or 250ms, got a mapping"},
		{"budget: 20", func(r Retry) any { return r.Budget }, 20.0, ""},
		{"budget: 2.5", func(r Retry) any { return r.Budget }, 2.5, ""},
		{`budget: "20%"`, func(r Retry) any { return r.Budget }, 20.0, ""},
		{`budget: 20%`, func(r Retry) any { return r.Budget }, 20.0, ""},
		{"budget: 100", func(r Retry) any { return r.Budget }, 100.0, ""},
		{"budget: 100.5", nil, nil, "out of range"},
		{"budget: -1", nil, nil, "out of range"},
		{"budget: .inf", nil, nil, "invalid percentage"},
		{`budget: "NaN"`, nil, nil, "invalid percentage"},
		{"budget_min: 0", func(r Retry) any { return r.BudgetMin }, 0.0, ""},
		{"budget_min: 2.5", func(r Retry) any { return r.BudgetMin }, 2.5, ""},
		{"budget_min: .nan", nil, nil, "want a number"},
		{`budget_min: "5"`, nil, nil, "want a number"},
		{"tries: 1", func(r Retry) any { return r.Tries }, 1, ""},
		{"tries: 99999999999999999999", nil, nil, "want a whole number"},
		{`tries: "3"`, nil, nil, "want a whole number"},
		{"non_idempotent: TRUE", func(r Retry) any { return r.NonIdempotent }, true, ""},
		{"non_idempotent: yes", nil, nil, "want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.retry, func(t *testing.T) {
			src := "routes: [{upstream: api}]\nupstreams:\n  api:\n    servers: [{url: \"http://a:1\"}]\n    retry: {" + tt.retry + "}\n"
			c, err := Parse([]byte(src), "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse(%s) = %v, want error containing %q", tt.retry, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s) = %v", tt.retry, err)
			}
			if got := tt.get(c.Upstreams[0].Retry); got != tt.want {
				t.Errorf("Parse(%s) gives %#v, want %#v", tt.retry, got, tt.want)
			}
		})
	}
}

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"200", 200, 200, true},
		{"200-399", 200, 399, true},
		{" 204 - 204 ", 204, 204, true},
		{"100-599", 100, 599, true},
		{"399-200", 0, 0, false},
		{"600", 0, 0, false},
		{"99", 0, 0, false},
		{"2xx", 0, 0, false},
		{"200-", 0, 0, false},
		{"-200", 0, 0, false},
		{"+200", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := ParseStatusRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParseStatusRange(%q) = %d, %d, %v, want %d, %d, ok %v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestNormaliseCIDR(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::1", "::1/128"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"2001:db8::1/48", "2001:db8::/48"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"10.0.0.0/33", ""},
		{"fe80::1%eth0", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := normaliseCIDR(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("normaliseCIDR(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}
