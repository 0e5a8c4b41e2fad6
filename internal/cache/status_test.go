package cache

import (
	"testing"
	"time"
)

func TestCacheStatus(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"hit", CacheStatus(true, "", false, "", 30*time.Second), "holdfast; hit; ttl=30"},
		{"uri-miss stored", CacheStatus(false, FwdURIMiss, true, "", 60*time.Second), "holdfast; fwd=uri-miss; stored; ttl=60"},
		{"bypass", CacheStatus(false, FwdBypass, false, "", 0), "holdfast; fwd=bypass"},
		{"stale negative ttl", CacheStatus(false, FwdStale, false, "", -5*time.Second), "holdfast; fwd=stale; ttl=-5"},
		{"stale-if-error", Status{Fwd: FwdStale, FwdStatus: 502, Detail: "connection_refused"}.String(),
			`holdfast; fwd=stale; fwd-status=502; detail="connection_refused"`},
		{"collapsed with key", Status{Fwd: FwdMiss, Collapsed: true, Key: `http://h/"q"`}.String(),
			`holdfast; fwd=miss; collapsed; key="http://h/\"q\""`},
		{"hit drops fwd params", Status{Hit: true, Fwd: FwdStale, FwdStatus: 200}.String(), "holdfast; hit"},
		{"detail escaped", CacheStatus(false, FwdMiss, false, "a\\b\n", 0), `holdfast; fwd=miss; detail="a\\b?"`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: Cache-Status = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
