package lang_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestPasswordHashWarning: a password mapping that can only pass a hash
// attribute's values through loads with a warning at the expression; one
// that may give clear text loads without.
func TestPasswordHashWarning(t *testing.T) {
	tests := []struct {
		expr string
		warn bool
	}{
		{`first(userPassword)`, true},
		{`userPassword[0]`, true},
		{`first(USERPASSWORD) ?? ""`, true},
		{`trim(first(userPassword))`, true},
		{`last(userPassword)`, true},
		{`first(attrs["userPassword"])`, true},
		{`first(uid) == "x" ? first(userPassword) : nil`, true},
		{`first(userPassword) ?? "Initial-1"`, false}, // may be clear text
		{`first(description)`, false},
		{`"Initial-" + first(uid)`, false},
		{`lower(first(userPassword))`, false}, // transformed: left to the run-time check
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			p, err := loadMap(t, "    password = "+tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			ws := p.Warnings()
			if !tt.warn {
				if ws != nil {
					t.Errorf("unexpected warning: %v", ws)
				}
				return
			}
			if ws == nil || len(ws.List) != 1 {
				t.Fatalf("want one warning, got %v", ws)
			}
			if got := ws.List[0].Error(); !strings.HasPrefix(got, "t.pipe:13:16: warning: password: ") || !strings.Contains(got, "never sent as password") {
				t.Errorf("warning %q", got)
			}
		})
	}
}

// TestPasswordHashNeverSent: a hashed value fails the change, with a
// message that shows no part of it; clear text is sent.
func TestPasswordHashNeverSent(t *testing.T) {
	p, err := loadMap(t, `    password = first(userPassword) ?? first(description)`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		value string
		sent  bool
	}{
		{"{PBKDF2-SHA512}10000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", false},
		{"{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", false},
		{"{CRYPT}$6$salt$hashhashhash", false},
		{"MD5$c2FsdA==$X03MO1qnZdYdgyfeuILPmQ==", false},
		{"Clear-text-1", true},
	}
	ev := p.NewEvaluator()
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			e := lang.NewEntry("uid=a,dc=example,dc=com", []lang.Attr{
				{Name: "uid", Values: []string{"a"}}, {Name: "userPassword", Values: []string{tt.value}},
			})
			res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Realtime)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []lang.Op{lang.Create, lang.Update} {
				doc, err := res.Resource(op, nil)
				if tt.sent {
					if err != nil || !strings.Contains(string(doc), `"password":"`+tt.value+`"`) {
						t.Errorf("op %d: clear text not sent: %s, %v", op, doc, err)
					}
					continue
				}
				var ee *lang.EvalError
				if !errors.As(err, &ee) {
					t.Fatalf("op %d: want an EvalError, got %v (resource %s)", op, err, doc)
				}
				if !strings.Contains(ee.Msg, "never sent as password") || ee.Pos.Line != 13 {
					t.Errorf("op %d: error %v", op, ee)
				}
				// No part of the value: not the scheme, not the data.
				for _, part := range strings.FieldsFunc(tt.value, func(r rune) bool { return strings.ContainsRune("{}$", r) }) {
					if len(part) >= 3 && strings.Contains(ee.Error(), part) {
						t.Errorf("op %d: the error shows %q: %v", op, part, ee)
					}
				}
			}
		})
	}
}
