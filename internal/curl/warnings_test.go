package curl

import (
	"reflect"
	"testing"
)

// TestAllWarningsSorted: warnings of the shell, of the options and of the
// request built from them come out by position, line then column, each
// once, although they are found in that order, pass by pass.
func TestAllWarningsSorted(t *testing.T) {
	src := "curl -X POST --bogus -r notarange.x -d @file1 -d x=1 https://h/a --frobnicate https://h/b | jq .\n" +
		"curl -u bob https://h/c --zzz\n"
	s, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []Pos
	for _, w := range s.AllWarnings() {
		got = append(got, w.Pos)
	}
	want := []Pos{
		{1, 14}, // --bogus
		{1, 25}, // notarange.x, the value of -r
		{1, 40}, // -d @file1 mixed with other data: found for each URL, said once
		{1, 66}, // --frobnicate
		{1, 91}, // |
		{1, 93}, // jq
		{2, 9},  // -u bob
		{2, 25}, // --zzz
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("positions = %v, want %v\nwarnings: %v", got, want, s.AllWarnings())
	}
}

// TestSortWarnings: the sort is by line, then column, stable, and keeps
// repeated warnings without a position (ParseArgs gives none, and two
// arguments may earn the same words).
func TestSortWarnings(t *testing.T) {
	ws := []Warning{
		{Pos: Pos{2, 1}, Msg: "c"},
		{Msg: "first without position"},
		{Pos: Pos{1, 10}, Msg: "b"},
		{Pos: Pos{1, 9}, Msg: "a"},
		{Msg: "same"},
		{Pos: Pos{1, 10}, Msg: "b"},
		{Msg: "same"},
		{Pos: Pos{1, 10}, Msg: "b2"},
	}
	want := []Warning{
		{Msg: "first without position"},
		{Msg: "same"},
		{Msg: "same"},
		{Pos: Pos{1, 9}, Msg: "a"},
		{Pos: Pos{1, 10}, Msg: "b"},
		{Pos: Pos{1, 10}, Msg: "b2"},
		{Pos: Pos{2, 1}, Msg: "c"},
	}
	if got := SortWarnings(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("SortWarnings = %v, want %v", got, want)
	}
}
