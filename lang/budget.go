package lang

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm/runtime"
)

// Budget bounds the evaluation of one change: every expression the change
// needs (class conditions, endpoint, lookup filter, mappings) shares it.
// expr has no loops of its own, but its closures (map, filter, reduce…)
// over a large attribute, nested, or a string doubled in a reduce, can run
// for minutes or take gigabytes; a budget stops such a change with an
// *EvalError and leaves every other change alone.
type Budget struct {
	// Time is the wall time one change's evaluation may take.
	Time time.Duration
	// Memory is what the strings and lists built by + and by functions
	// may add up to, in bytes: a string counts its length, a list 16 bytes
	// per element, a map 48 per entry. A function's result counts even when
	// it only passes a value through (trim of a value without spaces),
	// except first and last, which never build anything.
	Memory int64
	// Elements is expr's own memory budget (vm.VM.MemoryBudget): the
	// elements of ranges, array and map literals and sorts one expression
	// may build.
	Elements uint
}

// DefaultBudget is the budget of every evaluator unless SetBudget says
// otherwise: far above what a mapping needs (a group of 100 000 members
// mapped through lower() builds about 10 MB in a few milliseconds), far
// below what hurts the process.
var DefaultBudget = Budget{Time: 2 * time.Second, Memory: 64 << 20, Elements: conf.DefaultMemoryBudget}

// BudgetError is a change whose evaluation went over its budget. It is
// the Err of the *EvalError that fails the change, which names the
// expression (file:line:col) that was running.
type BudgetError struct {
	Time   time.Duration // the time budget, when it is the one exceeded
	Memory int64         // the memory budget, when it is the one exceeded
}

func (e *BudgetError) Error() string {
	if e.Time > 0 {
		return fmt.Sprintf("evaluation stopped: over the time budget of %v for one change (a loop over a large attribute, or loops nested?)", e.Time)
	}
	return fmt.Sprintf("evaluation stopped: over the memory budget of %s for one change (strings and lists built by + and functions)", sizeName(e.Memory))
}

func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// SetBudget sets the budget of every later evaluation (zero fields keep
// DefaultBudget's).
func (ev *Evaluator) SetBudget(b Budget) {
	if b.Time <= 0 {
		b.Time = DefaultBudget.Time
	}
	if b.Memory <= 0 {
		b.Memory = DefaultBudget.Memory
	}
	if b.Elements == 0 {
		b.Elements = DefaultBudget.Elements
	}
	ev.initMeter()
	ev.meter.budget = b
	ev.vm.MemoryBudget = b.Elements
}

// meter is an evaluator's account of the change being evaluated. Compiled
// programs are shared by every evaluator, so the functions the budget
// patcher calls find it among the evaluator's variables, under budgetVar.
// It has no exported fields or methods: an expression that reaches it
// through $env can do nothing with it.
type meter struct {
	budget   Budget
	used     int64
	deadline time.Time
	calls    uint32
}

// budgetVar is the variable holding the evaluator's meter. It has a space,
// so no script can name it.
const budgetVar = "budget meter"

// The functions the budget patcher inserts; their names have spaces too.
const (
	chargeFunc = "budget charge" // charge(meter, value) value: counts what a call built
	catFunc    = "budget concat" // concat(meter, a, b): a + b, counted before it is built
	tickFunc   = "budget tick"   // tick(meter): once per closure call, watches the clock
)

// checkEvery is how many budget calls go by between two looks at the
// clock: reading it costs about as much as a short mapping.
const checkEvery = 64

func (ev *Evaluator) initMeter() {
	if ev.meter == nil {
		ev.meter = &meter{budget: DefaultBudget}
		ev.vm.MemoryBudget = DefaultBudget.Elements
	}
	ev.env[budgetVar] = ev.meter
}

// startBudget opens the budget of a change: called when its variables are
// bound.
func (ev *Evaluator) startBudget() {
	if ev.meter == nil {
		ev.initMeter()
	}
	m := ev.meter
	m.used, m.calls = 0, 0
	m.deadline = time.Now().Add(m.budget.Time)
}

func (m *meter) charge(n int64) error {
	m.used += n
	if m.used > m.budget.Memory {
		return &BudgetError{Memory: m.budget.Memory}
	}
	if n >= 64<<10 {
		// A large value took time to build: look at the clock now.
		m.calls = checkEvery - 1
	}
	return m.tick()
}

func (m *meter) tick() error {
	m.calls++
	if m.calls%checkEvery == 0 && time.Now().After(m.deadline) {
		return &BudgetError{Time: m.budget.Time}
	}
	return nil
}

// sizeOf is what a value built by a function counts against the memory
// budget.
func sizeOf(v any) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x))
	case []byte:
		return int64(len(x))
	case []string:
		return 16 * int64(len(x))
	case []any:
		return 16 * int64(len(x))
	case map[string]any:
		return 48 * int64(len(x))
	case nil:
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return 16 * int64(rv.Len())
	case reflect.Map:
		return 48 * int64(rv.Len())
	case reflect.String:
		return int64(rv.Len())
	}
	return 0
}

// budgetOptions are the expr options of per-change expressions that make
// them keep to a Budget: the three functions, and the patcher that calls
// them.
func budgetOptions() []expr.Option {
	return []expr.Option{
		func(c *conf.Config) {
			c.Functions[chargeFunc] = &builtin.Function{
				Name: chargeFunc,
				Func: func(args ...any) (any, error) {
					if m, _ := args[0].(*meter); m != nil {
						if err := m.charge(sizeOf(args[1])); err != nil {
							return nil, err
						}
					}
					return args[1], nil
				},
				// The call keeps the exact static type of what it wraps.
				Validate: func(args []reflect.Type) (reflect.Type, error) { return args[1], nil },
			}
			c.Functions[catFunc] = &builtin.Function{
				Name: catFunc,
				Func: func(args ...any) (any, error) {
					a, aok := args[1].(string)
					b, bok := args[2].(string)
					if !aok || !bok {
						// Numbers, a time and a duration, or a type error
						// reported as + reports it.
						return runtime.Add(args[1], args[2]), nil
					}
					if m, _ := args[0].(*meter); m != nil {
						if err := m.charge(int64(len(a) + len(b))); err != nil {
							return nil, err
						}
					}
					return a + b, nil
				},
				Validate: func(args []reflect.Type) (reflect.Type, error) {
					if args[1].Kind() == reflect.String && args[2].Kind() == reflect.String {
						return args[1], nil
					}
					return anyType, nil // known at run time only
				},
			}
			c.Functions[tickFunc] = &builtin.Function{
				Name: tickFunc,
				Func: func(args ...any) (any, error) {
					if m, _ := args[0].(*meter); m != nil {
						if err := m.tick(); err != nil {
							return nil, err
						}
					}
					return nil, nil
				},
				Validate: func(args []reflect.Type) (reflect.Type, error) { return anyType, nil },
			}
		},
		expr.Patch(budgetPatcher{}),
	}
}

var anyType = reflect.TypeOf((*any)(nil)).Elem()

// budgetPatcher rewrites a per-change expression so that it keeps to the
// evaluator's budget: a + that may join strings becomes concat(meter, a,
// b); a call whose result is a string, list or map (or unknown) is wrapped
// in charge(meter, call); the body of every closure (map, filter, reduce…)
// starts with tick(meter), so that a long loop sees the clock. Static
// types are unchanged, so what loaded before loads the same.
type budgetPatcher struct{}

func (budgetPatcher) Visit(node *ast.Node) {
	loc := (*node).Location()
	meterIdent := func() ast.Node {
		id := &ast.IdentifierNode{Value: budgetVar}
		id.SetLocation(loc)
		return id
	}
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator != "+" || !stringish(n.Left) || !stringish(n.Right) {
			return
		}
		if isStringLit(n.Left) && isStringLit(n.Right) {
			return // its size is the script's
		}
		ast.Patch(node, call(catFunc, loc, meterIdent(), n.Left, n.Right))
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && (id.Value == chargeFunc || id.Value == catFunc || id.Value == tickFunc || passesThrough[id.Value]) {
			return
		}
		if builds(n.Type()) {
			ast.Patch(node, call(chargeFunc, loc, meterIdent(), n))
		}
	case *ast.BuiltinNode:
		if builds(n.Type()) {
			ast.Patch(node, call(chargeFunc, loc, meterIdent(), n))
		}
	case *ast.PredicateNode:
		if s, ok := n.Node.(*ast.SequenceNode); ok && len(s.Nodes) == 2 && isCallOf(s.Nodes[0], tickFunc) {
			return
		}
		bodyLoc := n.Node.Location()
		tick := call(tickFunc, bodyLoc, meterIdent())
		seq := &ast.SequenceNode{Nodes: []ast.Node{tick, n.Node}}
		seq.SetLocation(bodyLoc)
		n.Node = seq
	}
}

// passesThrough are the functions that return one of the values they are
// given, building nothing: counting them would count the entry's own data
// (first(jpegPhoto)) and cost time on every mapping.
var passesThrough = map[string]bool{"first": true, "last": true}

func call(name string, loc file.Location, args ...ast.Node) *ast.CallNode {
	callee := &ast.IdentifierNode{Value: name}
	callee.SetLocation(loc)
	c := &ast.CallNode{Callee: callee, Arguments: args}
	c.SetLocation(loc)
	return c
}

func isCallOf(n ast.Node, name string) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == name
}

// stringish reports whether a node is a string or of a type known only at
// run time.
func stringish(n ast.Node) bool {
	if n.Nature().Nil {
		return false // nil + "x" stays the load error it is
	}
	t := n.Type()
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
}

func isStringLit(n ast.Node) bool {
	_, ok := n.(*ast.StringNode)
	return ok
}

// builds reports whether a call of this static type may build something
// the memory budget counts.
func builds(t reflect.Type) bool {
	if t == nil {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// budgetMessage turns a run-time error that is the budget's into an
// *EvalError's message and cause; ok is false for any other error.
func budgetMessage(err error, elements uint) (msg string, cause error, ok bool) {
	var be *BudgetError
	if errors.As(err, &be) {
		return be.Error(), be, true
	}
	var fe *file.Error
	if errors.As(err, &fe) && fe.Message == "memory budget exceeded" {
		return fmt.Sprintf("evaluation stopped: over expr's memory budget of %d elements for one expression (ranges, lists and maps it builds)", elements), nil, true
	}
	return "", nil, false
}
