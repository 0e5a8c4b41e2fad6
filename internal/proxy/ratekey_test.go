package proxy

import "testing"

func TestRateKeyIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:203.0.113.7":   "::ffff:203.0.113.7",
		"not an address":       "not an address",
	} {
		if got := rateKeyIP(in); got != want {
			t.Errorf("rateKeyIP(%q) = %q, want %q", in, got, want)
		}
	}
}
