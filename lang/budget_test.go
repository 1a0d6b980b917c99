package lang_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/lang"
)

// budgetChange is an entry whose member and description attributes are as
// large as a test needs.
func budgetChange(members int, description string) *lang.Change {
	m := make([]string, members)
	for i := range m {
		m[i] = fmt.Sprintf("uid=U%d,ou=people,dc=x", i)
	}
	dn := "uid=a,dc=x"
	return &lang.Change{Type: lang.Add, DN: dn, Entry: lang.NewEntry(dn, []lang.Attr{
		{Name: "uid", Values: []string{"a"}},
		{Name: "member", Values: m},
		{Name: "description", Values: []string{description}},
		{Name: "userPassword", Values: []string{testPassword}},
	})}
}

// TestBudgetStopsChange: an expression that loops too long or builds too
// much fails its change with an *EvalError at the expression (file:line:
// col) whose cause is a *BudgetError (or expr's own element budget), and
// the next change through the same evaluator maps as usual. Before the
// budget, each of these ran to completion: minutes of CPU, or gigabytes.
func TestBudgetStopsChange(t *testing.T) {
	big := strings.Repeat("Ab", 200<<10) // 400 KiB
	tests := []struct {
		name    string
		mapping string
		budget  lang.Budget
		ch      *lang.Change
		pos     string // file:line:col of the EvalError
		want    string // in the message
		time    bool   // the time budget, else the memory budget (when cause)
		cause   bool   // a *BudgetError
	}{
		{
			name:    "string doubling by +",
			mapping: `title = reduce(1..len(first(description)), #acc + #acc, first(uid))`,
			budget:  lang.Budget{Memory: 1 << 20},
			ch:      budgetChange(1, strings.Repeat("d", 40)),
			pos:     "t.pipe:13:53",
			want:    "over the memory budget of 1 MiB for one change",
			cause:   true,
		},
		{
			name:    "strings built by functions",
			mapping: `title = lower(upper(lower(first(description))))`,
			budget:  lang.Budget{Memory: 1 << 20},
			ch:      budgetChange(1, big),
			pos:     "t.pipe:13:13",
			want:    "over the memory budget of 1 MiB",
			cause:   true,
		},
		{
			name:    "a list built by a function",
			mapping: `title = string(len(split(first(description), "")))`,
			budget:  lang.Budget{Memory: 1 << 20},
			ch:      budgetChange(1, big),
			pos:     "t.pipe:13:24",
			want:    "over the memory budget of 1 MiB",
			cause:   true,
		},
		{
			name:    "nested loops over a large attribute",
			mapping: `title = string(len(filter(member, {len(filter(member, {# == "x"})) > 0})))`,
			budget:  lang.Budget{Time: 50 * time.Millisecond},
			ch:      budgetChange(30000, "d"),
			want:    "over the time budget of 50ms for one change",
			time:    true,
			cause:   true,
		},
		{
			name:    "expr's element budget",
			mapping: `title = string(len(1..(50000 * len(first(description)))))`,
			ch:      budgetChange(1, strings.Repeat("d", 40)),
			pos:     "t.pipe:13:25",
			want:    "over expr's memory budget of 1000000 elements for one expression",
		},
		{
			name:    "a secret expression says why it stopped",
			mapping: `title = string(len(reduce(1..len(first(description)), #acc + #acc, first(userPassword))))`,
			budget:  lang.Budget{Memory: 1 << 20},
			ch:      budgetChange(1, strings.Repeat("d", 40)),
			pos:     "t.pipe:13:64",
			want:    "over the memory budget",
			cause:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := loadMap(t, "    "+tt.mapping)
			if err != nil {
				t.Fatal(err)
			}
			ev := p.NewEvaluator()
			ev.SetBudget(tt.budget)
			_, err = ev.Eval(tt.ch, lang.Realtime)
			var ee *lang.EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("Eval: %v, want an *EvalError", err)
			}
			if !strings.Contains(ee.Msg, tt.want) || strings.Contains(err.Error(), testPassword) {
				t.Errorf("message %q, want %q", ee.Msg, tt.want)
			}
			if tt.pos != "" && !strings.HasPrefix(err.Error(), tt.pos+": uid=a,dc=x: title: ") {
				t.Errorf("error %.200q, want it at %s", err, tt.pos)
			}
			var be *lang.BudgetError
			if errors.As(err, &be) != tt.cause {
				t.Errorf("cause %v, want a *BudgetError: %v", ee.Err, tt.cause)
			} else if tt.cause && (be.Time > 0) != tt.time {
				t.Errorf("BudgetError %+v, want the time budget: %v", be, tt.time)
			}
			// Only that change: the next one starts with a whole budget.
			res, err := ev.Eval(budgetChange(2, "small"), lang.Realtime)
			if err != nil {
				t.Fatalf("next change: %v", err)
			}
			if res.Class == nil {
				t.Fatal("next change: no class")
			}
		})
	}
}

// TestBudgetRoomForRealData: the default budget leaves room for what real
// entries need: a group of 20 000 members mapped member by member, a
// 300 KiB value passed through.
func TestBudgetRoomForRealData(t *testing.T) {
	p, err := loadMap(t, "    title = join(map(member, {lower(#) + \";\"}), \"\")\n    nickName = first(description)")
	if err != nil {
		t.Fatal(err)
	}
	ev := p.NewEvaluator()
	for i := 0; i < 3; i++ {
		if _, err := ev.Eval(budgetChange(20000, strings.Repeat("x", 300<<10)), lang.Realtime); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBudgetKeepsMeaning: the budget's rewriting of + and of calls leaves
// values, static types and load errors as they were.
func TestBudgetKeepsMeaning(t *testing.T) {
	p, err := loadMap(t, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want any
		err  string // a load error
	}{
		{expr: `1 + 2`, want: 3},
		{expr: `1.5 + 2`, want: 3.5},
		{expr: `"a" + "b"`, want: "ab"},
		{expr: `first(uid) + "-" + dn`, want: "a-uid=a,dc=x"},
		{expr: `parseJSON("{\"s\": \"a\"}").s + "y"`, want: "ay"},
		{expr: `reduce(1..4, #acc + #, 0)`, want: 10},
		{expr: `parseJSON("{\"n\": 1}").n + 1`, want: 2.0},
		{expr: `map(uid, # + "!")`, want: []any{"a!"}},
		{expr: `filter(member, hasSuffix(#, "dc=x"))`, want: []any{"uid=U0,ou=people,dc=x", "uid=U1,ou=people,dc=x"}},
		{expr: `upper(first(uid))`, want: "A"},
		{expr: `nil + "x"`, err: "invalid operation"},
		{expr: `1 + "a"`, err: "invalid operation"},
		{expr: `len(first(uid) + "b") + "c"`, err: "invalid operation"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			x, err := p.CompileExpr("<input>", tt.expr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("CompileExpr: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := reflect.TypeOf(tt.want); x.Type() != nil && x.Type().Kind() != reflect.Interface && x.Type() != want {
				t.Errorf("static type %v, want %v", x.Type(), want)
			}
			got, err := p.NewEvaluator().EvalExpr(x, budgetChange(2, "d"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("= %#v, want %#v", got, tt.want)
			}
		})
	}
}
