package repl_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
	"github.com/scimsync/scimsync/scripts"
)

func demo(t *testing.T) (*repl.REPL, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	r := repl.New(&out, repl.Options{Pipe: scripts.DemoPipe, Load: lang.LoadOptions{ReadFile: readDemo, LookupEnv: noEnv}})
	if r.Pipe() == nil || r.Len() != 30 || out.Len() != 0 {
		t.Fatalf("demo did not load: %d entries\n%s", r.Len(), out.String())
	}
	return r, &out
}

func run(t *testing.T, r *repl.REPL, out *bytes.Buffer, line string) (string, error) {
	t.Helper()
	out.Reset()
	quit, err := r.OneShot(line)
	if quit {
		t.Fatalf("%q quit", line)
	}
	return out.String(), err
}

func TestComplete(t *testing.T) {
	r, out := demo(t)
	if _, err := run(t, r, out, ":entry uid=praman,ou=People,dc=example,dc=com"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		pos  int // -1: the end
		want []string
		has  []string
	}{
		{line: ":fu", pos: -1, want: []string{":funcs"}},
		{line: "  :e", pos: -1, want: []string{":entries", ":entry"}},
		{line: ":", pos: -1, has: []string{":load", ":quit", ":help", ":patch"}},
		{line: ":help lo", pos: -1, want: []string{"lower"}},
		{line: ":help :pa", pos: -1, want: []string{":patch"}},
		{line: "low", pos: -1, want: []string{"lower"}},
		{line: "first(givenN", pos: -1, want: []string{"givenName"}},
		{line: "first(GIVENN", pos: -1, want: []string{"givenName"}}, // attribute names match case-insensitively
		{line: "first(ma", pos: -1, has: []string{"mail", "map", "max"}},
		{line: "ref(manager, Us", pos: -1, want: []string{"Users"}},
		{line: "hasPre", pos: -1, want: []string{"hasPrefix"}},
		{line: "first(ma) + 1", pos: 8, has: []string{"mail"}},
		{line: ":type up", pos: -1, want: []string{"upper"}},
		{line: `"low`, pos: -1, want: nil},  // in a string
		{line: "x.low", pos: -1, want: nil}, // a field
		{line: "42", pos: -1, want: nil},
		{line: ":show x", pos: -1, want: nil},
		{line: ":nope x", pos: -1, want: nil},
		{line: ":entry uid=pr", pos: -1, want: []string{"uid=praman,ou=People,dc=example,dc=com"}},
		{line: ":entry CN=A", pos: -1, want: []string{"cn=admins,ou=Groups,dc=example,dc=com"}}, // DNs match case-insensitively
		{line: ":entry uid=nobody", pos: -1, want: nil},
		{line: "displayName = upp", pos: -1, want: []string{"upper"}}, // the expression of a mapping line
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			pos := tt.pos
			if pos < 0 {
				pos = len([]rune(tt.line))
			}
			got := r.Complete(tt.line, pos)
			if tt.has != nil {
				for _, h := range tt.has {
					if !slices.Contains(got, h) {
						t.Errorf("Complete(%q, %d) = %q, lacks %q", tt.line, pos, got, h)
					}
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Complete(%q, %d) = %q, want %q", tt.line, pos, got, tt.want)
			}
		})
	}
}

func TestCompleteWord(t *testing.T) {
	r, _ := demo(t)
	head, words, tail := r.CompleteWord("lower(fir) + x", 9)
	if head != "lower(" || !slices.Equal(words, []string{"first"}) || tail != ") + x" {
		t.Errorf("CompleteWord = %q %q %q", head, words, tail)
	}
	head, words, tail = r.CompleteWord("  :fu", 5)
	if head != "  " || !slices.Equal(words, []string{":funcs"}) || tail != "" {
		t.Errorf("CompleteWord = %q %q %q", head, words, tail)
	}
}

func TestCompleteFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.pipe", "b.ldif", "current.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	r, _ := demo(t)
	for line, want := range map[string][]string{
		":load a":     {"a.pipe"},
		":entries b":  {"b.ldif"},
		":patch cur":  {"current.json"},
		":patch s":    {"sub" + string(filepath.Separator)},
		":patch nope": nil,
	} {
		if got := r.Complete(line, len(line)); !slices.Equal(got, want) {
			t.Errorf("Complete(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestIncomplete: which lines continue on the next.
func TestIncomplete(t *testing.T) {
	tests := []struct {
		in   string
		open bool
	}{
		{"first(mail", true},
		{"[1, 2", true},
		{`{"a": 1`, true},
		{`"abc`, true},
		{`'abc`, true},
		{"`raw", true},
		{"a &&", true},
		{"a ||", true},
		{"a ??", true},
		{"a +", true},
		{"a ==", true},
		{"a ? b :", true},
		{"x and", true},
		{"x in", true},
		{"/* comment", true},
		{"first(mail)", false},
		{`"a(b"`, false},
		{`"a\"("`, false},
		{"a // (", false},
		{"a)", false},
		{"join", false},
		{"origin", false},
		{"lower(first(cn)) // trailing &&", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, out := demo(t)
			_, err := run(t, r, out, tt.in)
			if got := errors.Is(err, repl.ErrIncomplete); got != tt.open {
				t.Errorf("OneShot(%q): incomplete %v, want %v (err %v, output %q)", tt.in, got, tt.open, err, out.String())
			}
			if r.Pending() != tt.open {
				t.Errorf("Pending() = %v", r.Pending())
			}
			if tt.open {
				r.Reset()
				if r.Pending() {
					t.Error("Reset left the expression pending")
				}
			}
		})
	}
}

// TestValues: how results print, as `value : type`.
func TestValues(t *testing.T) {
	r, out := demo(t)
	if _, err := run(t, r, out, ":entry uid=jmuller,ou=People,dc=example,dc=com"); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		`"a"`:                         `"a" : string`,
		`1 + 2`:                       `3 : int`,
		`1.5 * 2`:                     `3 : float`,
		`true`:                        `true : bool`,
		`nil`:                         `nil : nil`,
		`[]`:                          `[] : list`,
		`[1, "a"]`:                    `[1, "a"] : list<any>`,
		`["a", "b"]`:                  `["a", "b"] : list<string>`,
		`{"b": 1, "a": [true]}`:       `{"a": [true], "b": 1} : map`,
		`first(cn)`:                   `"José Müller" : string`,
		`title`:                       `["Engineering Manager"] : list<string>`,
		`Users`:                       `Users : endpoint`,
		`ref(manager, Users, Groups)`: `ref(["uid=praman,ou=People,dc=example,dc=com"], Users, Groups) : ref`,
	}
	for in, want := range tests {
		got, err := run(t, r, out, in)
		if err != nil || strings.TrimSpace(got) != want {
			t.Errorf("%s\n got: %s (%v)\nwant: %s", in, strings.TrimSpace(got), err, want)
		}
	}
}

// TestFuncsAndHelp checks :funcs and :help NAME against the registry
// without fixing its text, which the builtins' authors change.
func TestFuncsAndHelp(t *testing.T) {
	r, out := demo(t)
	got, err := run(t, r, out, ":funcs")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"strings:\n", "  lower(string) string\n", "expr's builtins:\n", "len", "ref(dns, Endpoint...)"} {
		if !strings.Contains(got, s) {
			t.Errorf(":funcs lacks %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "now") {
		t.Errorf(":funcs lists now(), which pipes may not call:\n%s", got)
	}
	got, err = run(t, r, out, ":help lower")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"lower(string) string\n", "\nExamples:\n", "  lower(first(mail))\n    = "} {
		if !strings.Contains(got, s) {
			t.Errorf(":help lower lacks %q:\n%s", s, got)
		}
	}
}

// TestLoad: New reports a script that does not load and starts anyway;
// :load picks up the fixed script and its entries.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	script := func(when string) {
		t.Helper()
		text := `pipe "t"
source ldif { file = "e.ldif" }
scim { url = "https://scim.example.com/v2" }
endpoint Users {
  path = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
class c {
  when = ` + when + `
  endpoint = Users
  map { userName = first(uid) }
}
`
		if err := os.WriteFile("t.pipe", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("e.ldif", []byte("dn: uid=a,dc=x\nuid: a\n\ndn: uid=b,dc=x\nuid: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script("hasValu(uid, \"a\")")
	var out bytes.Buffer
	r := repl.New(&out, repl.Options{Pipe: "t.pipe"})
	if r.Pipe() != nil || !strings.Contains(out.String(), "t.pipe:9:10: unknown function hasValu") {
		t.Fatalf("want the diagnostic, got:\n%s", out.String())
	}
	if s := r.Summary(); s != "no pipe loaded (t.pipe has errors), no entries" {
		t.Errorf("Summary() = %q", s)
	}
	got, err := run(t, r, &out, "first(uid)")
	if err == nil || !strings.Contains(got, "no pipe loaded: fix t.pipe and :load it") {
		t.Errorf("expression without a pipe: %v\n%s", err, got)
	}
	script("hasValue(uid, \"a\")")
	got, err = run(t, r, &out, ":load")
	if err != nil || got != "loaded pipe \"t\" from t.pipe: 1 endpoint, 1 class\n2 entries from e.ldif\n[1/2] add uid=a,dc=x\n" {
		t.Errorf(":load: %v\n%s", err, got)
	}
	if s := r.Summary(); s != `pipe "t" (t.pipe), 2 entries from e.ldif` {
		t.Errorf("Summary() = %q", s)
	}
	// Reloading the script keeps the place in its entries.
	if _, err := run(t, r, &out, ":next"); err != nil {
		t.Fatal(err)
	}
	got, err = run(t, r, &out, ":load")
	if _, i := r.Current(); err != nil || i != 1 || got != "loaded pipe \"t\" from t.pipe: 1 endpoint, 1 class\n" {
		t.Errorf(":load again: at %d, %v\n%s", i, err, got)
	}
	if _, err := run(t, r, &out, ":prev"); err != nil {
		t.Fatal(err)
	}
	got, err = run(t, r, &out, ":lookup")
	if err != nil || got != "endpoint Users has no lookup\n" {
		t.Errorf(":lookup: %v\n%s", err, got)
	}
}

// fakeFetcher stands for an LDAP directory.
type fakeFetcher map[string]*lang.Entry

func (f fakeFetcher) Fetch(dn string) (*lang.Entry, error) {
	if e, ok := f[dn]; ok {
		return e, nil
	}
	return nil, errors.New("LDAP Result Code 32 \"No Such Object\"")
}

func (f fakeFetcher) Search(filter string) ([]*lang.Entry, error) {
	var out []*lang.Entry
	for _, dn := range []string{"uid=x,ou=People,dc=example,dc=com", "uid=y,ou=People,dc=example,dc=com"} {
		out = append(out, f[dn])
	}
	return out, nil
}

func TestFetch(t *testing.T) {
	person := func(uid string) *lang.Entry {
		return lang.NewEntry("uid="+uid+",ou=People,dc=example,dc=com", []lang.Attr{
			{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "uid", Values: []string{uid}}, {Name: "cn", Values: []string{"X " + uid}},
		})
	}
	f := fakeFetcher{}
	for _, uid := range []string{"x", "y"} {
		f["uid="+uid+",ou=People,dc=example,dc=com"] = person(uid)
	}
	var out bytes.Buffer
	r := repl.New(&out, repl.Options{Pipe: scripts.DemoPipe, Load: lang.LoadOptions{ReadFile: readDemo, LookupEnv: noEnv}, Fetcher: f})
	got, err := run(t, r, &out, ":fetch uid=x,ou=People,dc=example,dc=com")
	if err != nil || got != "1 entry read for uid=x,ou=People,dc=example,dc=com\n[31/31] add uid=x,ou=People,dc=example,dc=com\n" {
		t.Errorf(":fetch: %v\n%s", err, got)
	}
	got, err = run(t, r, &out, ":lookup")
	if err != nil || got != "userName eq \"x\"\n" {
		t.Errorf(":lookup: %v\n%s", err, got)
	}
	got, err = run(t, r, &out, ":fetch uid=nobody")
	if err == nil || !strings.Contains(got, "No Such Object") {
		t.Errorf(":fetch of a missing entry: %v\n%s", err, got)
	}
	got, err = run(t, r, &out, ":search (objectClass=inetOrgPerson)")
	if err != nil || got != "2 entries read for (objectClass=inetOrgPerson)\n[32/33] add uid=x,ou=People,dc=example,dc=com\n" {
		t.Errorf(":search: %v\n%s", err, got)
	}
}
