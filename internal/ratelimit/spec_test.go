package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "100/s", want: Rate{N: 100, Per: time.Second}},
		{in: "5/m", want: Rate{N: 5, Per: time.Minute}},
		{in: "1000/h", want: Rate{N: 1000, Per: time.Hour}},
		{in: " 7 / s ", want: Rate{N: 7, Per: time.Second}},
		{in: "100", wantErr: "has no unit"},
		{in: "100/d", wantErr: `unknown unit "d"`},
		{in: "100/2s", wantErr: `unknown unit "2s"`},
		{in: "100/S", wantErr: `unknown unit "S"`},
		{in: "1.5/s", wantErr: "whole number"},
		{in: "+5/s", wantErr: "whole number"},
		{in: "-5/s", wantErr: "whole number"},
		{in: "/s", wantErr: "whole number"},
		{in: "0/s", wantErr: "at least 1"},
		{in: "2000000000/s", wantErr: "at most"},
		{in: "99999999999999999999/s", wantErr: "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) = %v, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		want    Key
		wantErr string
	}{
		{in: "client_ip", want: Key{Kind: KeyClientIP}},
		{in: "route", want: Key{Kind: KeyRoute}},
		{in: "header:X-Api-Key", want: Key{Kind: KeyHeader, Header: "X-Api-Key"}},
		{in: "header:x-api-key", want: Key{Kind: KeyHeader, Header: "X-Api-Key"}},
		{in: "header:", wantErr: "valid header"},
		{in: "header:X Api", wantErr: "valid header"},
		{in: "header:X:Api", wantErr: "valid header"},
		{in: "Client_IP", wantErr: "unknown"},
		{in: "ip", wantErr: "unknown"},
		{in: "", wantErr: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKey(%q) = %v, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKey(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	l, err := ParseLimit("header:x-api-key", "100/s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "header:X-Api-Key 100/s burst 100"; got != want {
		t.Errorf("ParseLimit(...).String() = %q, want %q (a zero burst is the rate's N)", got, want)
	}
	for _, tt := range []struct {
		key, rate string
		burst     int
		wantErr   string
	}{
		{"ip", "100/s", 1, "key"},
		{"client_ip", "100/x", 1, "rate"},
		{"client_ip", "100/s", -1, "burst"},
		{"client_ip", "100/s", 2_000_000_000, "burst"},
	} {
		if _, err := ParseLimit(tt.key, tt.rate, tt.burst); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseLimit(%q, %q, %d) = %v, want an error about the %s", tt.key, tt.rate, tt.burst, err, tt.wantErr)
		}
	}
	if err := (Limit{Key: Key{Kind: KeyRoute, Header: "X"}, Rate: Rate{N: 1, Per: time.Second}}).Validate(); err == nil {
		t.Error("Validate() of a route key with a header = nil, want an error")
	}
	if err := (Limit{Key: Key{Kind: KeyRoute}, Rate: Rate{N: 1, Per: 2 * time.Second}}).Validate(); err == nil {
		t.Error("Validate() of a 2s period = nil, want an error")
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "1/m", "3600/h", " 5 / s", "0/s", "1/", "/", "1e3/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.N < 1 || r.N > maxCount || r.perSecond() <= 0 {
			t.Fatalf("ParseRate(%q) = %v, out of range", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %v, whose String %q parses to %v, %v", s, r, r.String(), back, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"client_ip", "route", "header:X-Api-Key", "header:", "header:a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if err := k.validate(); err != nil {
			t.Fatalf("ParseKey(%q) = %v, which does not validate: %v", s, k, err)
		}
		back, err := ParseKey(k.String())
		if err != nil || back != k {
			t.Fatalf("ParseKey(%q) = %v, whose String %q parses to %v, %v", s, k, k.String(), back, err)
		}
	})
}
