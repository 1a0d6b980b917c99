package lang_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// usersScript is a pipe with one class whose map block is %MAP%.
const usersScript = `pipe "t"
source ldif { file = "x.ldif" }
scim { url = "https://scim.example.com/v2" }
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User",
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
}
class people {
  endpoint = Users
  map {
    userName = first(uid)
%MAP%
  }
}
`

// loadMap loads usersScript with the mapping lines in m.
func loadMap(t *testing.T, m string) (*lang.Pipe, error) {
	t.Helper()
	return lang.Load("t.pipe", strings.Replace(usersScript, "%MAP%", m, 1), lang.LoadOptions{LookupEnv: fakeEnv})
}

// TestStaticTypeMismatch: a mapping whose static type cannot be its
// target's SCIM type is a load error at the expression; an explicit
// conversion, or a type unknown until run time, loads.
func TestStaticTypeMismatch(t *testing.T) {
	tests := []struct {
		mapping string
		err     string // "" when it must load
	}{
		{`active = first(mail)`, `t.pipe:13:14: active: active is a boolean, but the expression gives a string; convert it: toBool(…)`},
		{`displayName = len(mail)`, `t.pipe:13:19: displayName: displayName is a string, but the expression gives a number; convert it with string(…)`},
		{`title = 1.5`, `title is a string, but the expression gives a number`},
		{`profileUrl = 7`, `profileUrl is a reference, but the expression gives a number`},
		{`emails[type eq "work"].primary = first(mail)`, `emails[type eq "work"].primary is a boolean, but the expression gives a string`},
		{`name.givenName = true`, `name.givenName is a string, but the expression gives a bool`},
		{`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter" = 4130`, `costCenter is a string, but the expression gives a number`},
		{`active = toBool(first(mail))`, ""},
		{`active = first(mail) == "yes"`, ""},
		{`displayName = string(len(mail))`, ""},
		{`active = parseJSON(first(description)).active`, ""}, // any: checked at run time
		{`displayName = first(cn) ?? nil`, ""},
		{`emails = mail`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mapping, func(t *testing.T) {
			_, err := loadMap(t, "    "+tt.mapping)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("want a load, got\n%v", err)
				}
				return
			}
			var ds *lang.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("want diagnostics, got %v", err)
			}
			if !strings.Contains(ds.Error(), tt.err) {
				t.Errorf("got\n%v\nwant it to contain\n%s", ds.Error(), tt.err)
			}
		})
	}
}

// TestRuntimeTypeMismatch: a value of unknown static type that turns out
// of another type than its target's fails the change with an EvalError,
// and is never converted (2 is not sent as "2", "TRUE" not as true).
func TestRuntimeTypeMismatch(t *testing.T) {
	tests := []struct {
		mapping, json string
		want          string // the resource's field, or "error: …"
	}{
		{`displayName = parseJSON(first(description)).v`, `{"v": 2}`, `error: displayName: want a string, got a number; convert it with string(…)`},
		{`displayName = parseJSON(first(description)).v`, `{"v": "Ann"}`, `"displayName":"Ann"`},
		{`active = parseJSON(first(description)).v`, `{"v": "TRUE"}`, `error: active: want a boolean, got a string`},
		{`active = parseJSON(first(description)).v`, `{"v": false}`, `"active":false`},
		{`title = parseJSON(first(description)).v`, `{"v": true}`, `error: title: want a string, got a bool`},
		{`emails[type eq "work"].primary = parseJSON(first(description)).v`, `{"v": 1}`, `error: emails[type eq "work"].primary: want a boolean, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.mapping+" "+tt.json, func(t *testing.T) {
			p, err := loadMap(t, "    "+tt.mapping+"\n    emails[type eq \"work\"].value = \"a@example.com\"")
			if err != nil {
				t.Fatal(err)
			}
			e := lang.NewEntry("uid=a,dc=example,dc=com", []lang.Attr{
				{Name: "uid", Values: []string{"a"}}, {Name: "description", Values: []string{tt.json}},
			})
			res, err := p.NewEvaluator().Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Realtime)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := res.Resource(lang.Create, nil)
			if want, ok := strings.CutPrefix(tt.want, "error: "); ok {
				var ee *lang.EvalError
				if !errors.As(err, &ee) {
					t.Fatalf("want an EvalError, got %v (resource %s)", err, doc)
				}
				if got := ee.What + ": " + ee.Msg; !strings.HasPrefix(got, tt.mapping[:strings.Index(tt.mapping, " =")]+": "+want) {
					t.Errorf("error %q, want %q", got, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(doc), tt.want) {
				t.Errorf("resource %s lacks %s", doc, tt.want)
			}
		})
	}
}
