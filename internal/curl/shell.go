package curl

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Parse parses src as bash would and returns one Request per URL of each
// curl command in it. Other commands, pipelines' other ends, redirections
// and command substitutions become warnings. A syntax error, or text with no
// curl command, is an *Error with the position.
//
// Quoting is undone by mvdan.cc/sh/v3 (its parser and its expand package for
// the literal parts), so that $'...', "...\"..." and line continuations read
// exactly as bash reads them; $VAR and ${VAR} stay environment reads.
func Parse(src string) (*Script, error) {
	p := syntax.NewParser(syntax.KeepComments(false), syntax.Variant(syntax.LangBash))
	f, err := p.Parse(strings.NewReader(src), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Pos: pos(pe.Pos), Msg: pe.Text}
		}
		var le syntax.LangError
		if errors.As(err, &le) {
			return nil, &Error{Pos: pos(le.Pos), Msg: le.Error()}
		}
		return nil, &Error{Pos: Pos{1, 1}, Msg: err.Error()}
	}
	w := &walker{script: &Script{}}
	for _, st := range f.Stmts {
		w.stmt(st)
	}
	if len(w.script.Requests) == 0 {
		at := Pos{1, 1}
		if len(f.Stmts) > 0 {
			at = pos(f.Stmts[0].Pos())
		}
		msg := "no curl command found"
		switch {
		case w.curlAt.Line != 0:
			// A curl command without a (non-empty) URL.
			msg, at = "the curl command has no URL to request", w.curlAt
		case w.firstOther != "":
			msg = fmt.Sprintf("%q is not a curl command", w.firstOther)
			at = w.firstOtherPos
		}
		return nil, &Error{Pos: at, Msg: msg}
	}
	return w.script, nil
}

// ParseArgs converts an argument list that a shell has already split, such
// as os.Args after "--". args[0] must be curl. Nothing is expanded: "$X" in
// an argument is a literal dollar sign.
func ParseArgs(args []string) (*Script, error) {
	if len(args) == 0 {
		return nil, &Error{Msg: "no curl command given"}
	}
	if !isCurl(args[0]) {
		return nil, &Error{Msg: fmt.Sprintf("%q is not a curl command", args[0])}
	}
	in := make([]arg, 0, len(args)-1)
	for _, a := range args[1:] {
		in = append(in, arg{text: Lit(a), raw: a, lit: true})
	}
	s := &Script{}
	reqs, warns := parseCurl(Pos{}, in, stdinSource{})
	s.Requests = reqs
	s.Warnings = warns
	return s, nil
}

func pos(p syntax.Pos) Pos { return Pos{Line: int(p.Line()), Col: int(p.Col())} }

func isCurl(name string) bool {
	base := path.Base(name)
	return base == "curl" || base == "curl.exe"
}

// arg is one shell word of a curl command.
type arg struct {
	text Text
	raw  string // the word as literal text; meaningful when lit
	lit  bool   // the word has no variable parts
	pos  Pos
}

// stdinSource is what a command's standard input is redirected from, for
// @- data: a file (<), or text (<<< and here-documents).
type stdinSource struct {
	file   Text
	text   Text
	set    bool
	isFile bool
	pos    Pos
}

type walker struct {
	script        *Script
	firstOther    string
	firstOtherPos Pos
	curlAt        Pos // the first curl command, even one that makes no request
}

func (w *walker) warn(p Pos, opt, format string, a ...any) {
	w.script.Warnings = append(w.script.Warnings, Warning{Pos: p, Option: opt, Msg: fmt.Sprintf(format, a...)})
}

func (w *walker) stmt(st *syntax.Stmt) {
	if st.Background || st.Coprocess || st.Negated {
		w.warn(pos(st.Pos()), "", "&, coproc and ! around a command are ignored")
	}
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		w.call(st, c)
	case *syntax.BinaryCmd:
		op := c.Op.String()
		w.warn(pos(c.OpPos), op, "commands joined by %q are converted one by one", op)
		w.stmt(c.X)
		w.stmt(c.Y)
	case *syntax.Subshell:
		for _, s := range c.Stmts {
			w.stmt(s)
		}
	case *syntax.Block:
		for _, s := range c.Stmts {
			w.stmt(s)
		}
	case nil:
		w.warn(pos(st.Pos()), "", "a statement without a command is skipped")
	default:
		w.warn(pos(st.Pos()), "", "a shell construct (%T) is skipped: only simple curl commands are converted", c)
	}
}

func (w *walker) call(st *syntax.Stmt, c *syntax.CallExpr) {
	if len(c.Assigns) > 0 {
		w.warn(pos(c.Assigns[0].Pos()), "", "variable assignments are not carried into the generated code")
	}
	if len(c.Args) == 0 {
		return
	}
	var warns []Warning
	conv := func(word *syntax.Word) arg {
		t, ws := wordText(word)
		warns = append(warns, ws...)
		a := arg{text: t, lit: t.IsLiteral(), pos: pos(word.Pos())}
		if a.lit {
			a.raw = t.String()
		}
		return a
	}
	name := conv(c.Args[0])
	if !name.lit || !isCurl(name.raw) {
		label := name.text.String()
		if w.firstOther == "" {
			w.firstOther, w.firstOtherPos = label, name.pos
		}
		w.warn(name.pos, "", "command %q is not curl: skipped", label)
		return
	}
	if w.curlAt.Line == 0 {
		w.curlAt = name.pos
	}
	in := stdinSource{}
	for _, r := range st.Redirs {
		rp := pos(r.OpPos)
		switch r.Op {
		case syntax.RdrIn:
			t, ws := wordText(r.Word)
			warns = append(warns, ws...)
			in = stdinSource{file: t, set: true, isFile: true, pos: rp}
		case syntax.WordHdoc:
			t, ws := wordText(r.Word)
			warns = append(warns, ws...)
			in = stdinSource{text: Concat(t, Lit("\n")), set: true, pos: rp}
		case syntax.Hdoc, syntax.DashHdoc:
			t, ws := docText(r.Hdoc)
			warns = append(warns, ws...)
			in = stdinSource{text: t, set: true, pos: rp}
		default:
			warns = append(warns, Warning{Pos: rp, Option: r.Op.String(), Msg: fmt.Sprintf("redirection %q is ignored", r.Op.String())})
		}
	}
	args := make([]arg, 0, len(c.Args)-1)
	for _, word := range c.Args[1:] {
		args = append(args, conv(word))
	}
	reqs, ws := parseCurl(pos(c.Args[0].Pos()), args, in)
	warns = append(warns, ws...)
	if len(reqs) == 0 {
		w.script.Warnings = append(w.script.Warnings, warns...)
		return
	}
	// Warnings of the shell level belong to every request of the command.
	for _, r := range reqs {
		r.Warnings = append(append([]Warning(nil), warns...), r.Warnings...)
	}
	w.script.Requests = append(w.script.Requests, reqs...)
}

// wordText converts a shell word to Text: quotes undone, parameter
// expansions kept as variable reads, and everything that would run code
// reported.
func wordText(word *syntax.Word) (Text, []Warning) {
	var t Text
	var warns []Warning
	for _, part := range word.Parts {
		pt, ws := partText(part, false)
		t = append(t, pt...)
		warns = append(warns, ws...)
	}
	return t.norm(), warns
}

// docText converts a here-document body, where quotes are plain characters.
func docText(word *syntax.Word) (Text, []Warning) {
	if word == nil {
		return nil, nil
	}
	var t Text
	var warns []Warning
	for _, part := range word.Parts {
		if l, ok := part.(*syntax.Lit); ok {
			s, err := expand.Document(newExpandConfig(), &syntax.Word{Parts: []syntax.WordPart{l}})
			if err != nil {
				s = l.Value
			}
			t = append(t, Segment{Lit: s})
			continue
		}
		pt, ws := partText(part, true)
		t = append(t, pt...)
		warns = append(warns, ws...)
	}
	return t.norm(), warns
}

func partText(part syntax.WordPart, quoted bool) (Text, []Warning) {
	switch p := part.(type) {
	case *syntax.Lit:
		var w *syntax.Word
		if quoted {
			w = &syntax.Word{Parts: []syntax.WordPart{&syntax.DblQuoted{Parts: []syntax.WordPart{p}}}}
		} else {
			w = &syntax.Word{Parts: []syntax.WordPart{p}}
			if strings.HasPrefix(p.Value, "~") {
				// Tilde expansion would read $HOME at conversion time; keep
				// the tilde for the reader to see.
				return Lit(p.Value), nil
			}
		}
		s, err := expand.Literal(newExpandConfig(), w)
		if err != nil {
			return Lit(p.Value), []Warning{{Pos: pos(p.Pos()), Msg: fmt.Sprintf("cannot expand %q: %v", p.Value, err)}}
		}
		return Lit(s), nil
	case *syntax.SglQuoted:
		s, err := expand.Literal(newExpandConfig(), &syntax.Word{Parts: []syntax.WordPart{p}})
		if err != nil {
			return Lit(p.Value), []Warning{{Pos: pos(p.Pos()), Msg: fmt.Sprintf("cannot expand $'...': %v", err)}}
		}
		return Lit(s), nil
	case *syntax.DblQuoted:
		var t Text
		var warns []Warning
		for _, in := range p.Parts {
			pt, ws := partText(in, true)
			t = append(t, pt...)
			warns = append(warns, ws...)
		}
		return t, warns
	case *syntax.ParamExp:
		return paramText(p)
	case *syntax.CmdSubst:
		return nil, []Warning{{Pos: pos(p.Pos()), Option: "$(...)", Msg: "command substitution $(...) is not run: its output is left out of the request"}}
	case *syntax.ArithmExp:
		return nil, []Warning{{Pos: pos(p.Pos()), Option: "$((...))", Msg: "arithmetic expansion $((...)) is not evaluated: left out of the request"}}
	case *syntax.ProcSubst:
		return nil, []Warning{{Pos: pos(p.Pos()), Option: "<(...)", Msg: "process substitution is not run: left out of the request"}}
	default:
		return nil, []Warning{{Pos: pos(part.Pos()), Msg: fmt.Sprintf("shell construct %T is not supported: left out of the request", part)}}
	}
}

func paramText(p *syntax.ParamExp) (Text, []Warning) {
	at := pos(p.Pos())
	if p.Param == nil {
		return nil, []Warning{{Pos: at, Msg: "unsupported parameter expansion: left out of the request"}}
	}
	name := p.Param.Value
	if !validEnvName(name) {
		return nil, []Warning{{Pos: at, Option: "$" + name, Msg: fmt.Sprintf("special parameter $%s has no value outside a script: left out of the request", name)}}
	}
	var warns []Warning
	if p.Excl || p.Length || p.Index != nil || p.Slice != nil || p.Repl != nil || p.Exp != nil || p.Names != 0 {
		warns = append(warns, Warning{Pos: at, Option: "${" + name + "...}", Msg: fmt.Sprintf("only the plain value of $%s is read: its expansion operator is ignored", name)})
	}
	return Text{{Env: name}}, warns
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// newExpandConfig returns a fresh config for each expansion: with a nil
// config, mvdan.cc/sh/v3/expand (v3.14.1) writes to a shared package value,
// which is a data race when two goroutines parse at once.
func newExpandConfig() *expand.Config { return &expand.Config{} }
