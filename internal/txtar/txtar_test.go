package txtar

import "testing"

func TestRoundTrip(t *testing.T) {
	in := "a comment\nover two lines\n-- script.pipe --\npipe \"x\"\n-- empty --\n-- want --\nline\n"
	a := Parse(in)
	if a.Comment != "a comment\nover two lines\n" || len(a.Files) != 3 {
		t.Fatalf("parsed %+v", a)
	}
	if d, ok := a.Get("empty"); !ok || d != "" {
		t.Errorf("empty = %q, %v", d, ok)
	}
	if _, ok := a.Get("missing"); ok {
		t.Error("missing file found")
	}
	if got := a.Format(); got != in {
		t.Errorf("Format = %q, want %q", got, in)
	}
	a.Set("want", "new")
	a.Set("extra", "x\n")
	if got := a.Format(); got != "a comment\nover two lines\n-- script.pipe --\npipe \"x\"\n-- empty --\n-- want --\nnew\n-- extra --\nx\n" {
		t.Errorf("after Set: %q", got)
	}
	if a := Parse("no files\n"); a.Comment != "no files\n" || len(a.Files) != 0 {
		t.Errorf("comment only: %+v", a)
	}
	if a := Parse("-- crlf --\r\ndata\r\n"); len(a.Files) != 1 || a.Files[0].Name != "crlf" {
		t.Errorf("CRLF: %+v", a)
	}
}
