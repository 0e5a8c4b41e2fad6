package cli

import (
	"flag"
	"fmt"
	"runtime/debug"
)

var versionCommand = &command{
	name:     "version",
	summary:  "print the version and the revision it was built from",
	synopsis: []string{"version", "--version"},
	about: `Prints holdfast's version, and the VCS revision and time of the source it was
built from, with "modified" when that source had uncommitted changes. A binary
built by "go run" or a test carries no revision, and says "revision unknown".`,
	examples: []string{"holdfast version"},
	define: func(fs *flag.FlagSet, e env) func([]string) int {
		return noArgs(e, func() int {
			fmt.Fprintln(e.stdout, versionLine(debug.ReadBuildInfo()))
			return 0
		})
	},
}

// versionString is the version alone: Version when set at build time, else
// the main module's version from the build information ("(devel)" for a
// build from a work tree).
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	return moduleVersion(info, ok)
}

func moduleVersion(info *debug.BuildInfo, ok bool) string {
	switch {
	case Version != "dev" && Version != "":
		return Version
	case ok && info.Main.Version != "":
		return info.Main.Version
	}
	return "(devel)"
}

// versionLine is what "holdfast version" prints, from the build
// information that the go command records in the binary: for a report
// about a binary, the revision says what it runs where a version such as
// "(devel)" does not.
//
//	holdfast v1.2.0 revision 9725261a4e0b5d8c3f1e2a7b6c9d0e1f2a3b4c5d 2026-01-30T10:00:00Z
//	holdfast (devel) revision 9725261a4e0b5d8c3f1e2a7b6c9d0e1f2a3b4c5d 2026-01-30T10:00:00Z (modified)
//	holdfast (devel) revision unknown
func versionLine(info *debug.BuildInfo, ok bool) string {
	line := "holdfast " + moduleVersion(info, ok)
	var revision, at, modified string
	if ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if revision == "" {
		return line + " revision unknown"
	}
	line += " revision " + revision
	if at != "" {
		line += " " + at
	}
	if modified == "true" {
		line += " (modified)"
	}
	return line
}
