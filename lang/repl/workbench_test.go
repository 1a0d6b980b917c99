package repl_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
)

// workbenchScript has what :save must keep: comments, odd spacing, a
// multi-line mapping, a class with no map block, and a one-line class.
const workbenchScript = `pipe "wb"   # name

source ldif { file = "e.ldif" }
scim { url = "https://scim.example.com/v2" }

endpoint Users {
  path = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
endpoint Groups {
  path = "/Groups"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
}

class people {
  base = ["ou=People,dc=x"]
	endpoint = Users   # a tab before
  map {
    userName    = first(uid)   # the login
    displayName = first(cn) ??
                  first(uid)
  }
}

class teams {
  base = ["ou=Teams,dc=x"]
  endpoint = Groups
}

class others { endpoint = Users }
`

const workbenchEntries = "dn: uid=a,ou=People,dc=x\nuid: a\ncn: A\n\ndn: cn=t,ou=Teams,dc=x\ncn: t\n\ndn: uid=o,dc=x\nuid: o\n"

// TestSave types lines, saves, and compares the whole file: the typed
// lines replace exactly the lines they stand for (or are added at the end
// of the block), every other byte stays, and the file loads.
func TestSave(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  func(s string) string // the file from the original
	}{
		{name: "replace a one-line mapping, comment kept", lines: []string{"userName = lower(first(uid))"},
			want: func(s string) string {
				return replaceOnce(s, "userName    = first(uid)", "userName = lower(first(uid))")
			}},
		{name: "replace a mapping on two lines", lines: []string{"displayName = upper(first(cn))"},
			want: func(s string) string {
				return replaceOnce(s, "displayName = first(cn) ??\n                  first(uid)", "displayName = upper(first(cn))")
			}},
		{name: "add to the map block", lines: []string{"@create title = \"x\"", "nickName = first(uid)"},
			want: func(s string) string {
				return replaceOnce(s, "                  first(uid)\n  }", "                  first(uid)\n    @create title = \"x\"\n    nickName = first(uid)\n  }")
			}},
		{name: "a class setting", lines: []string{"endpoint = Users", "when = true"},
			want: func(s string) string { return replaceOnce(s, "# a tab before\n", "# a tab before\n\twhen = true\n") }},
		{name: "a class without a map block", lines: []string{":class teams", "displayName = first(cn)", "externalId = first(cn)"},
			want: func(s string) string {
				return replaceOnce(s, "  endpoint = Groups\n}", "  endpoint = Groups\n  map {\n    displayName = first(cn)\n    externalId = first(cn)\n  }\n}")
			}},
		{name: "a one-line class", lines: []string{":class others", "userName = first(uid)"},
			want: func(s string) string {
				return replaceOnce(s, "class others { endpoint = Users }", "class others { endpoint = Users\n  map {\n    userName = first(uid)\n  }\n}")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			write(t, "wb.pipe", workbenchScript)
			write(t, "e.ldif", workbenchEntries)
			var out bytes.Buffer
			r := repl.New(&out, repl.Options{Pipe: "wb.pipe", Load: lang.LoadOptions{LookupEnv: noEnv}})
			for _, l := range append(tt.lines, ":save") {
				if got, err := run(t, r, &out, l); err != nil {
					t.Fatalf("%s: %v\n%s", l, err, got)
				}
			}
			data, err := os.ReadFile("wb.pipe")
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(workbenchScript); string(data) != want {
				t.Errorf("saved:\n%s\nwant:\n%s", data, want)
			}
			if _, err := lang.LoadFile("wb.pipe", lang.LoadOptions{LookupEnv: noEnv}); err != nil {
				t.Errorf("the saved script does not load: %v", err)
			}
		})
	}
}

func replaceOnce(s, old, new string) string {
	if strings.Count(s, old) != 1 {
		panic("not once: " + old)
	}
	return strings.Replace(s, old, new, 1)
}

func write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadWhenChanged: a script changed on disk is reloaded before the
// next line, which says so, and the overrides stay on top of it.
func TestReloadWhenChanged(t *testing.T) {
	t.Chdir(t.TempDir())
	write(t, "wb.pipe", workbenchScript)
	write(t, "e.ldif", workbenchEntries)
	var out bytes.Buffer
	r := repl.New(&out, repl.Options{Pipe: "wb.pipe", Load: lang.LoadOptions{LookupEnv: noEnv}})
	if got, err := run(t, r, &out, "displayName = upper(first(cn))"); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if got, _ := run(t, r, &out, "1 + 1"); got != "2 : int\n" {
		t.Fatalf("unchanged file: %q", got)
	}
	write(t, "wb.pipe", strings.Replace(workbenchScript, "userName    = first(uid)", "userName    = \"u-\" + first(uid)", 1))
	got, err := run(t, r, &out, ":table userName displayName")
	if err != nil || !strings.HasPrefix(got, "wb.pipe changed on disk: reloading it\nloaded pipe \"wb\" from wb.pipe") ||
		!strings.Contains(got, "with 1 override typed here") || !strings.Contains(got, `"u-a"     "A"`) {
		t.Errorf("%v\n%s", err, got)
	}
	if got, _ := run(t, r, &out, "1 + 1"); got != "2 : int\n" {
		t.Errorf("reloaded twice: %q", got)
	}
}

// TestHistoryLine: a multi-line input is one history line that, typed
// again, gives the same result.
func TestHistoryLine(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"map(mail,", "  upper(#))"}, "map(mail, upper(#))"},
		{[]string{"displayName = first(cn) +   // the name", `  " (staff)"`}, `displayName = first(cn) + " (staff)"`},
		{[]string{`"a`, `b"`}, `"a\nb"`},
		{[]string{"`a", "b`"}, "`a b`"},
		{[]string{"1 + 1"}, "1 + 1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.lines, "|"), func(t *testing.T) {
			if got := repl.HistoryLine(tt.lines); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The joined line means what the lines meant.
	r, out := demo(t)
	lines := []string{`upper("a`, `b") + first(uid ??`, `  ["x"])`}
	for _, l := range lines {
		if _, err := r.OneShot(l); err != nil && err != repl.ErrIncomplete {
			t.Fatal(err)
		}
	}
	multi := out.String()
	out.Reset()
	if _, err := r.OneShot(repl.HistoryLine(lines)); err != nil {
		t.Fatal(err)
	}
	if out.String() != multi || !strings.Contains(multi, `"A\nB`) {
		t.Errorf("joined: %q, lines: %q", out.String(), multi)
	}
}
