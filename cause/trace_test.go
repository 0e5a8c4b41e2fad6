package cause_test

import (
	"net/http"
	"testing"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/testutil"
)

func TestTrackerPhasesAndWritten(t *testing.T) {
	reset := testutil.ResetAfterRequest(t)
	dead := testutil.DeadAddr(t)
	for _, tc := range []struct {
		name        string
		url         string
		wantCause   cause.Cause
		wantWritten bool
		postRetry   bool
	}{
		{"refused", "http://" + dead, cause.ConnectionRefused, false, true},
		{"reset after the request", "http://" + reset.Addr, cause.ConnectionTerminated, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr cause.Tracker
			req, _ := http.NewRequestWithContext(tr.WithContext(t.Context()), "POST", tc.url, nil)
			client := &http.Client{Transport: &http.Transport{}}
			_, err := client.Do(req)
			if err == nil {
				t.Fatal("no error")
			}
			c := tr.Classify(err)
			if c != tc.wantCause || tr.Written() != tc.wantWritten {
				t.Errorf("cause %v written %v, want %v %v (phase %v)", c, tr.Written(), tc.wantCause, tc.wantWritten, tr.Phase())
			}
			if got := tr.RetryableFor(c, false); got != tc.postRetry {
				t.Errorf("POST retryable = %v, want %v", got, tc.postRetry)
			}
		})
	}
}
