package codegen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

// pyUnusedImports is a Python script that prints, for each file named,
// the names it imports and never uses, and exits 1 when there are any:
// pyflakes's first check, without pyflakes. One run checks every file, as
// starting python3 is the slow part.
const pyUnusedImports = `import ast, sys
status = 0
for path in sys.argv[1:]:
    tree = ast.parse(open(path).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {a.asname or a.name for a in node.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    unused = sorted(imported - used)
    if unused:
        print(path + ": unused imports: " + ", ".join(unused))
        status = 1
sys.exit(status)
`

// pythonImportCommands are commands whose Python programs use os in each
// of its ways, or not at all.
var pythonImportCommands = []string{
	`curl https://h/`,                                               // no os
	`curl -X POST --retry 3 -d a=1 https://h/`,                      // no os, with the retry class
	`curl "$BASE/items"`,                                            // os.environ
	`curl -F 'file=@report.pdf' https://h/`,                         // os.path.basename
	`curl -F 'file=@report.pdf;filename=r.pdf' h/`,                  // a file name given: no os
	`curl -F "file=@$REPORT;filename=r.pdf" https://h/`,             // os.environ in the path only
	`curl -u "$CREDS" https://h/`,                                   // os.environ
	`curl -b cookies.txt -x socks5h://p:1080 -U "u:$PW" https://h/`, // quote, urlsplit, os.environ
}

// TestPythonImportsOSOnlyWhenUsed: "import os" is there exactly when the
// program uses os, with and without retries.
func TestPythonImportsOSOnlyWhenUsed(t *testing.T) {
	for _, cmd := range pythonImportCommands {
		for _, opts := range []Options{{}, {NoRetry: true}} {
			s, err := curl.Parse(cmd)
			if err != nil {
				t.Fatal(err)
			}
			src, err := Generate("python", s.Requests[0], opts)
			if err != nil {
				t.Fatal(err)
			}
			imports := strings.Contains(src, "\nimport os\n")
			uses := strings.Contains(src, "os.environ") || strings.Contains(src, "os.path")
			if imports != uses {
				t.Errorf("%s (%+v): import os %v, os used %v:\n%s", cmd, opts, imports, uses, src)
			}
		}
	}
}

// TestPythonNoUnusedImports: no generated Python program, golden files
// included, imports a module it does not use. Needs python3 (its ast
// module), else skips.
func TestPythonNoUnusedImports(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: imports not checked with its parser")
	}
	dir := t.TempDir()
	checker := filepath.Join(dir, "unused.py")
	if err := os.WriteFile(checker, []byte(pyUnusedImports), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.py"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden Python files: %v", err)
	}
	for i, cmd := range pythonImportCommands {
		s, err := curl.Parse(cmd)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Generate("python", s.Requests[0], Options{})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "cmd"+string(rune('a'+i))+".py")
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if out, err := exec.Command("python3", append([]string{checker}, files...)...).CombinedOutput(); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}
