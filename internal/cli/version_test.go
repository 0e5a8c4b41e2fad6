package cli

import (
	"runtime/debug"
	"testing"
)

// TestVersionLine: the version line says the module version, the VCS
// revision and time, and "(modified)" for a dirty tree; without them it
// says so plainly; a version set with -ldflags wins.
func TestVersionLine(t *testing.T) {
	const rev = "9725261a4e0b5d8c3f1e2a7b6c9d0e1f2a3b4c5d"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-01-30T10:00:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	tests := []struct {
		name    string
		info    *debug.BuildInfo
		ok      bool
		version string // Version, as -ldflags would set it
		want    string
	}{
		{"no build information", nil, false, "dev", "holdfast (devel) revision unknown"},
		{"go run or go test", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dev", "holdfast (devel) revision unknown"},
		{"go build in a clean tree", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, true, "dev",
			"holdfast (devel) revision " + rev + " 2026-01-30T10:00:00Z"},
		{"go build in a modified tree", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.1-0.20260130100000-9725261a4e0b+dirty"}, Settings: vcs("true")}, true, "dev",
			"holdfast v1.2.1-0.20260130100000-9725261a4e0b+dirty revision " + rev + " 2026-01-30T10:00:00Z (modified)"},
		{"go install at a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, true, "dev", "holdfast v1.2.0 revision unknown"},
		{"-ldflags -X", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, true, "v1.3.0",
			"holdfast v1.3.0 revision " + rev + " 2026-01-30T10:00:00Z"},
	}
	defer func(v string) { Version = v }(Version)
	for _, tt := range tests {
		Version = tt.version
		if got := versionLine(tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: versionLine = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionCommand: "holdfast version" and "--version" print the line
// of this binary's build information, and succeed.
func TestVersionCommand(t *testing.T) {
	want := versionLine(debug.ReadBuildInfo()) + "\n"
	for _, arg := range []string{"version", "--version", "-v"} {
		code, out, errOut := runCLI(arg)
		if code != 0 || out != want || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", arg, code, out, errOut, want)
		}
	}
}
