package lang_test

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestParseMappingLine tells mapping lines from expressions, as the REPL
// must: a target (or @usage) and = make a mapping line; anything else,
// including == and `let x = …`, is an expression.
func TestParseMappingLine(t *testing.T) {
	tests := []struct {
		in    string
		key   string // "" = an expression
		usage string
		text  string // the span
		err   string
	}{
		{in: `displayName = upper(first(cn))`, key: "displayName", text: `displayName = upper(first(cn))`},
		{in: `  name.givenName=first(givenName)  # a comment`, key: "name.givenName", text: `name.givenName=first(givenName)`},
		{in: `@create @resync externalId = first(entryUUID)`, key: "externalId", usage: "create resync", text: `@create @resync externalId = first(entryUUID)`},
		{in: `emails[type eq "work"].value = lower(first(mail))`, key: `emails[type eq "work"].value`, text: `emails[type eq "work"].value = lower(first(mail))`},
		{in: `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = first(ou)`, key: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
			text: `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = first(ou)`},
		{in: "displayName = first(cn) +\n  \"!\"", key: "displayName", text: "displayName = first(cn) +\n  \"!\""},
		{in: `when = hasValue(objectClass, "person")`, key: "when", text: `when = hasValue(objectClass, "person")`},
		{in: `cn == "x"`},
		{in: `first(cn) + "=" + "x"`},
		{in: `let x = 1; x`},
		{in: `x <= 1`},
		{in: `x!=1`},
		{in: `"a" == b`},
		{in: `[1, 2]`},
		{in: `title = "a")`, err: `<input>:1:12: unexpected ")" after the expression`},
		{in: `@creat title = "x"`, err: "<input>:1:1: unknown usage"},
		{in: `@ title = "x"`, err: "<input>:1:2: expected a usage name after @"},
		{in: `title =`, err: "<input>:1:8: expected an expression after ="},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ls, err := lang.ParseMappingLine("<input>", tt.in)
			if tt.err != "" {
				// A bad @usage is only found when compiling.
				if err == nil && ls != nil && strings.Contains(tt.err, "unknown usage") {
					return
				}
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.key == "" {
				if ls != nil {
					t.Fatalf("an expression taken for a mapping line of %q", ls.Key)
				}
				return
			}
			if ls == nil {
				t.Fatal("a mapping line taken for an expression")
			}
			if ls.Key != tt.key || strings.Join(ls.Usage, " ") != tt.usage || tt.in[ls.Start:ls.End] != tt.text {
				t.Errorf("key %q usage %v span %q", ls.Key, ls.Usage, tt.in[ls.Start:ls.End])
			}
		})
	}
}

// TestScriptLayout finds each class's settings, map block and mapping
// lines, so that replacing a span changes that line only.
func TestScriptLayout(t *testing.T) {
	text := `pipe "x"
class a {
  when = true   # w
  map {
    @create userName = first(uid)  # u
    "displayName" = first(cn) +
      "!"
  }
}
class b { endpoint = Users }
`
	ls, err := lang.ScriptLayout("x.pipe", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d classes", len(ls))
	}
	a, b := ls[0], ls[1]
	span := func(s lang.LineSpan) string { return text[s.Start:s.End] }
	if a.Name != "a" || len(a.Settings) != 1 || span(a.Settings[0]) != "when = true" {
		t.Errorf("class a settings: %+v", a.Settings)
	}
	if a.Map == nil || len(a.Map.Lines) != 2 || span(a.Map.Lines[0]) != "@create userName = first(uid)" ||
		span(a.Map.Lines[1]) != "\"displayName\" = first(cn) +\n      \"!\"" || a.Map.Lines[1].Key != "displayName" {
		t.Fatalf("class a map: %+v", a.Map)
	}
	if text[a.Map.Open] != '{' || text[a.Map.Close:a.Map.Close+3] != "}\n}" || text[a.End:] != "}\nclass b { endpoint = Users }\n" {
		t.Errorf("braces: open %d close %d end %d", a.Map.Open, a.Map.Close, a.End)
	}
	if b.Map != nil || text[b.End:] != "}\n" || span(b.Settings[0]) != "endpoint = Users" {
		t.Errorf("class b: %+v", b)
	}
	if _, err := lang.ScriptLayout("x.pipe", "class a {\n"); err == nil || !strings.Contains(err.Error(), "x.pipe:1:1: class block is not closed") {
		t.Errorf("unclosed: %v", err)
	}
}
