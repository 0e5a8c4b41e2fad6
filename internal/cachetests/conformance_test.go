//go:build unix

package cachetests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The files of bench/cache-tests, from this package's directory.
const (
	benchDir      = "../../bench/cache-tests"
	runScript     = benchDir + "/run.sh"
	thresholdFile = benchDir + "/threshold"
)

// run.sh's exit statuses besides 0 (see its header).
const (
	exitHarness     = 2 // the suite could not drive some test through holdfast
	exitOver        = 3 // more required failures than the threshold
	exitUnavailable = 4 // node or npm missing, or npm install failed
)

// budget bounds the whole run: installing the suite (once per machine),
// building holdfast and the suite itself, which takes about 15 s (its
// tests run 100 at a time, and some wait 3 s between two requests).
const budget = 6 * time.Minute

// summary is the part of run.sh's summary.json that the test reads.
type summary struct {
	Version       string `json:"version"`
	HoldfastCache string `json:"holdfast_cache"`
	Counts        struct {
		Tests          int `json:"tests"`
		Passed         int `json:"passed"`
		Failed         int `json:"failed"`
		Required       int `json:"required"`
		RequiredFailed int `json:"required_failed"`
	} `json:"counts"`
	ByResult         map[string]int `json:"by_result"`
	RequiredFailures []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"required_failures"`
	HarnessErrors []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"harness_errors"`
}

// TestCacheConformance runs http-cache-tests through holdfast (with the
// route's cache on when holdfast accepts the cache keys, CACHE=auto) and
// fails when more of the suite's required tests fail than
// bench/cache-tests/threshold allows. The threshold may only go down: when
// holdfast does better, lower it in the same change.
//
// It needs node and npm, and the npm registry the first time on a machine
// (the suite is kept in ~/.cache/holdfast). Without them it skips, or
// fails with HOLDFAST_REQUIRE_TOOLS=1 (as in CI). -short skips it.
func TestCacheConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs holdfast and a Node.js origin through the HTTP cache test suite (about 30 s): skipped with -short")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" not found: apt-get install nodejs (with npm)")
		}
	}
	for _, tool := range []string{"bash", "go", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run.sh needs it", tool)
		}
	}
	threshold := readThreshold(t)

	limit := budget
	if dl, ok := t.Deadline(); ok {
		if left := time.Until(dl) - 20*time.Second; left < limit {
			limit = left
		}
	}
	if limit < time.Minute {
		t.Fatalf("less than a minute left before the test binary's deadline (-timeout): not enough to run the suite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	out := t.TempDir()
	var log bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", runScript)
	cmd.Env = append(os.Environ(), "OUT="+out, "CACHE=auto")
	cmd.Stdout = &log
	cmd.Stderr = &log
	// Its own process group: should run.sh not stop in time after the
	// SIGTERM below (its trap stops the origin, holdfast and the client by
	// their PIDs), what is left of the group is killed after the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil && ctx.Err() != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	elapsed := time.Since(start).Round(time.Second)

	code := 0
	var exit *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("run.sh did not finish within %v:\n%s", limit, log.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run.sh: %v\n%s", err, log.String())
	}
	switch code {
	case 0, exitOver:
	case exitUnavailable:
		t.Log(log.String())
		unavailable(t, "the suite could not be installed (see the output above)")
	case exitHarness:
		t.Fatalf("the suite could not drive every test through holdfast (exit %d):\n%s", code, log.String())
	default:
		t.Fatalf("run.sh failed (exit %d) after %v:\n%s", code, elapsed, log.String())
	}

	s := readSummary(t, filepath.Join(out, "summary.json"))
	t.Logf("http-cache-tests %s through holdfast (cache %s), %v: %d tests, passed %d, failed %d, required failed %d (threshold %d)",
		s.Version, s.HoldfastCache, elapsed, s.Counts.Tests, s.Counts.Passed, s.Counts.Failed, s.Counts.RequiredFailed, threshold)
	t.Logf("by result: %v", s.ByResult)
	if len(s.HarnessErrors) > 0 {
		t.Fatalf("%d tests could not be driven through holdfast, first: %s: %s",
			len(s.HarnessErrors), s.HarnessErrors[0].ID, s.HarnessErrors[0].Message)
	}
	if s.Counts.Tests == 0 || s.Counts.Passed == 0 {
		t.Fatalf("no test of the suite passed: the run is broken, not holdfast's caching:\n%s", log.String())
	}
	var ids []string
	for _, f := range s.RequiredFailures {
		ids = append(ids, fmt.Sprintf("  %s: %s", f.ID, f.Message))
	}
	switch n := s.Counts.RequiredFailed; {
	case n > threshold:
		t.Errorf("%d required tests of http-cache-tests fail through holdfast, more than the %d in bench/cache-tests/threshold:\n%s\n"+
			"to see one test's requests and responses: TEST_ID=ID bash bench/cache-tests/run.sh",
			n, threshold, strings.Join(ids, "\n"))
	case n < threshold:
		t.Logf("required failures down to %d from a threshold of %d: lower bench/cache-tests/threshold to %d", n, threshold, n)
		fallthrough
	default:
		if len(ids) > 0 {
			t.Logf("required failures:\n%s", strings.Join(ids, "\n"))
		}
	}
}

// unavailable skips the test, or fails it when HOLDFAST_REQUIRE_TOOLS=1.
func unavailable(t *testing.T, why string) {
	if os.Getenv("HOLDFAST_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s, and HOLDFAST_REQUIRE_TOOLS=1 asks for it", why)
	}
	t.Skip(why)
}

func readThreshold(t *testing.T) int {
	b, err := os.ReadFile(thresholdFile)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		t.Fatalf("%s: want a number of required failures, got %q", thresholdFile, strings.TrimSpace(string(b)))
	}
	return n
}

func readSummary(t *testing.T, path string) summary {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("run.sh wrote no summary: %v", err)
	}
	var s summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}
