package lang

import (
	"reflect"
	"sort"
)

// Expr is one per-change expression compiled on its own against a pipe's
// environment: what the REPL evaluates, and how the builtins' examples run
// through the same path a pipe uses.
type Expr struct {
	e     *expression
	attrs []string // attributes it reads
}

// Type returns the expression's static type (nil when unknown).
func (x *Expr) Type() reflect.Type { return x.e.prog.Node().Type() }

// CompileExpr compiles text as a per-change expression of the pipe. name
// labels positions in diagnostics (e.g. "<repl>").
func (p *Pipe) CompileExpr(name, text string) (*Expr, error) {
	c := &compiler{
		src:      NewSource(name, text),
		opts:     &LoadOptions{},
		p:        p,
		known:    p.known,
		spelled:  p.spelled,
		envTypes: p.envTypes,
		used:     map[string]bool{},
	}
	e := c.expression(exprText{text: text}, "expression", wantAny)
	if len(c.diags.List) > 0 || e == nil {
		c.diags.Source = c.src
		c.diags.sort()
		return nil, &c.diags
	}
	x := &Expr{e: e}
	for a := range c.used {
		x.attrs = append(x.attrs, a)
	}
	sort.Strings(x.attrs)
	return x, nil
}

// EvalExpr evaluates a compiled expression against a change. A failure is
// an *EvalError.
func (ev *Evaluator) EvalExpr(x *Expr, ch *Change) (any, error) {
	ev.bind(ch)
	for _, a := range x.attrs {
		ev.env[a] = ch.Entry.value(a)
	}
	return ev.run(x.e)
}
