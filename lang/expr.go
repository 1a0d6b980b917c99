package lang

import (
	"reflect"
	"sort"

	"github.com/scimsync/scimsync/engine/secret"
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

// Secret reports whether the expression reads a password attribute
// (by name, attrs[…] or $env): its values are never shown.
func (x *Expr) Secret() bool { return x.e.secret }

// EvalExpr evaluates a compiled expression against a change, for people to
// read (the REPL): when the expression reads a password attribute, every
// string in its value is secret.Withheld ("(withheld)"), so that the value
// keeps its shape and type but never shows. A failure is an *EvalError.
func (ev *Evaluator) EvalExpr(x *Expr, ch *Change) (any, error) {
	ev.bind(ch)
	for _, a := range x.attrs {
		ev.env[a] = ch.Entry.value(a)
	}
	v, err := ev.run(x.e)
	if err != nil || !x.e.secret {
		return v, err
	}
	return withhold(v), nil
}

// withhold returns v with every string in it replaced by secret.Withheld.
func withhold(v any) any {
	switch x := v.(type) {
	case string:
		return secret.Withheld
	case []string:
		out := make([]string, len(x))
		for i := range out {
			out[i] = secret.Withheld
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withhold(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = withhold(e)
		}
		return out
	case []byte:
		return secret.Withheld
	}
	return v
}
