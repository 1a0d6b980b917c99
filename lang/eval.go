package lang

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// Evaluator evaluates changes against a compiled pipe. It keeps its own VM
// and variables, so it is not safe for concurrent use: give each worker one.
type Evaluator struct {
	p       *Pipe
	exclude map[string]bool // lower-case target attributes or paths left out
	vm      vm.VM
	env     map[string]any
	res     Result
	dn      *ldap.DN
	dnOK    bool
	ch      *Change
	meter   *meter // the change's evaluation budget (budget.go)
}

// NewEvaluator returns an evaluator for p.
func (p *Pipe) NewEvaluator() *Evaluator {
	env := make(map[string]any, len(p.env)+len(p.attrs)+4)
	for k, v := range p.env {
		env[k] = v
	}
	return &Evaluator{p: p, env: env}
}

// Result is what a pipe makes of one change: the class and endpoint that
// take it, the lookup filter, and the evaluated mappings, from which
// Resource builds the SCIM JSON. A Result is valid until the evaluator's
// next Eval.
type Result struct {
	Change     *Change
	Mode       Mode
	OutOfScope bool // no class takes the change
	Class      *Class
	Endpoint   *Endpoint
	Filter     string // the lookup filter; "" when the endpoint has none

	values  []any // per mapping of Class; nil when not evaluated or empty
	w       writer
	exclude map[string]bool
}

// EvalError is an expression that failed on one change. It fails that
// change only, never the pipe.
type EvalError struct {
	Pos  Pos    // where in the script
	DN   string // the entry
	What string // what was computed: "when of class people", "name.givenName"
	Msg  string
	Err  error // the cause, when it is an error of its own (a Resolver's)
}

// Unwrap returns the cause.
func (e *EvalError) Unwrap() error { return e.Err }

// Error gives `file:line:col: dn: what: message`, with the DN and the
// message capped and their control characters escaped (logsafe.Text): an
// entry's data never makes a 100 KB or terminal-driving error.
func (e *EvalError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s: %s", e.Pos.File, e.Pos.Line, e.Pos.Col, logsafe.Text(e.DN), e.What, logsafe.Text(e.Msg))
}

// Eval classifies a change and evaluates what its class needs: endpoint,
// lookup filter and, unless it is a delete, the mappings used in mode.
func (ev *Evaluator) Eval(ch *Change, mode Mode) (*Result, error) {
	ev.bind(ch)
	if mode != Realtime {
		ev.env["newPassword"] = nil // never in resync, whatever the change holds
	}
	r := &ev.res
	*r = Result{Change: ch, Mode: mode, values: r.values[:0], w: r.w}
	r.w.ready = false // what prepare made was for the previous change
	cl, err := ev.classify(ch, nil)
	if err != nil {
		return nil, err
	}
	if cl == nil {
		r.OutOfScope = true
		return r, nil
	}
	r.Class = cl
	if r.Endpoint, err = ev.endpoint(cl); err != nil {
		return nil, err
	}
	if r.Filter, err = ev.lookup(r.Endpoint); err != nil {
		if ch.Type != Delete {
			return nil, err
		}
		// A delete record often carries only the DN: the engine finds the
		// resource through its id map instead.
		r.Filter = ""
	}
	if ch.Type == Delete {
		return r, nil
	}
	r.exclude = ev.exclude
	for _, m := range cl.Mappings {
		if m.Usage&(bit(Create, mode)|bit(Update, mode)) == 0 || r.excluded(m) || m.password && ev.p.SkipPasswords {
			r.values = append(r.values, nil)
			continue
		}
		v, err := ev.run(m.prog)
		if err != nil {
			return nil, err
		}
		r.values = append(r.values, v)
	}
	return r, nil
}

// Secrets returns the values of the result that are never shown: every
// value of the change's password attributes (userPassword, unicodePwd, …)
// and every string a mapping gave whose target is password or whose
// expression reads a password attribute. Outputs for people (map, resync
// --dry-run, the REPL) show each as secret.Withheld; the request sent
// carries the real value.
func (r *Result) Secrets() []string {
	var out []string
	if r.Change != nil && !r.Change.NewPassword.IsZero() {
		out = append(out, r.Change.NewPassword.Reveal())
	}
	if r.Change != nil && r.Change.Entry != nil {
		for _, a := range r.Change.Entry.Attrs() {
			if IsSecretAttribute(a.Name) {
				out = append(out, a.Values...)
			}
		}
	}
	if r.Class == nil {
		return out
	}
	for i, m := range r.Class.Mappings {
		if i >= len(r.values) || !(m.password || m.prog != nil && m.prog.secret) {
			continue
		}
		out = appendStrings(out, r.values[i])
	}
	return out
}

// appendStrings appends the strings in v (a string, a list, a map).
func appendStrings(out []string, v any) []string {
	switch x := v.(type) {
	case string:
		return append(out, x)
	case []string:
		return append(out, x...)
	case []any:
		for _, e := range x {
			out = appendStrings(out, e)
		}
	case map[string]any:
		for _, e := range x {
			out = appendStrings(out, e)
		}
	}
	return out
}

// changeTypeValues are the change types' names, boxed once.
var changeTypeValues = [...]any{0: "unknown", Add: "add", Modify: "modify", Delete: "delete", ModRDN: "modrdn"}

// Exclude leaves targets out of every result this evaluator makes: names
// are top-level attributes (password, emails) or whole target paths
// (name.givenName), compared case-insensitively. An excluded target is
// neither sent nor managed, as Ping's resync --excludeDestinationAttr.
func (ev *Evaluator) Exclude(names ...string) {
	if len(names) == 0 {
		ev.exclude = nil
		return
	}
	ev.exclude = map[string]bool{}
	for _, n := range names {
		ev.exclude[strings.ToLower(n)] = true
	}
}

// excluded reports whether a mapping's target is excluded.
func (r *Result) excluded(m *Mapping) bool {
	if r.exclude == nil {
		return false
	}
	return r.exclude[strings.ToLower(m.Target.Attr)] || r.exclude[strings.ToLower(m.Target.String())] ||
		m.Target.URN != "" && r.exclude[strings.ToLower(m.Target.URN+":"+m.Target.Attr)]
}

// bind sets the variables for a change.
func (ev *Evaluator) bind(ch *Change) {
	ev.ch = ch
	ev.dn, ev.dnOK = nil, false
	ev.startBudget()
	env := ev.env
	env["dn"] = ch.DN
	env["oldDN"] = ch.OldDN
	env["changeType"] = changeTypeValues[ch.Type]
	env["changed"] = ch.Changed
	env["newPassword"] = newPasswordValue(ch)
	for _, a := range ev.p.attrs {
		env[a] = ch.Entry.value(a)
	}
}

func (ev *Evaluator) run(e *expression) (any, error) {
	v, err := ev.vm.Run(e.prog, ev.env)
	if err != nil {
		return nil, ev.evalError(e, err)
	}
	return v, nil
}

func (ev *Evaluator) evalError(e *expression, err error) *EvalError {
	ee := &EvalError{Pos: e.pos, DN: ev.ch.DN, What: e.what, Msg: err.Error()}
	if fe, ok := err.(*file.Error); ok {
		ee.Msg = fe.Message
		ee.Pos = ev.p.src.Pos(e.text.off + runeOffsetToByte(e.text.text, fe.From))
	}
	if msg, cause, ok := budgetMessage(err, ev.vm.MemoryBudget); ok {
		// Says nothing of the values, so a secret expression shows it too.
		ee.Msg, ee.Err = msg, cause
		return ee
	}
	if e.secret {
		ee.Msg = "the expression failed (the message is withheld: the expression reads a password attribute, whose values are never shown)"
	}
	if strings.Contains(ee.Msg, "<nil>") {
		ee.Msg += " (an attribute it reads has no value here: give a default with ??, e.g. first(cn) ?? \"\")"
	}
	return ee
}

// ClassReport says whether one class took a change, and if not, why not.
type ClassReport struct {
	Class  *Class
	Match  bool
	Reason string // why it did not match: "not under …", "when is false", "does not synchronize deletes"
}

// Explain evaluates the classes in order for a change and reports each one
// up to the first that matches.
func (ev *Evaluator) Explain(ch *Change) ([]ClassReport, error) {
	ev.bind(ch)
	var reports []ClassReport
	_, err := ev.classify(ch, &reports)
	return reports, err
}

// classify returns the first class that takes the change, or nil.
func (ev *Evaluator) classify(ch *Change, reports *[]ClassReport) (*Class, error) {
	var op uint8
	switch ch.Type {
	case Add:
		op = opCreate
	case Delete:
		op = opDelete
	default:
		op = opModify
	}
	for _, cl := range ev.p.Classes {
		reason := ""
		switch {
		case cl.ops&op == 0:
			reason = "does not synchronize " + map[uint8]string{opCreate: "creates", opModify: "modifies", opDelete: "deletes"}[op]
		case len(cl.base) > 0 && !ev.under(cl.base):
			reason = "not under " + strings.Join(cl.Base, " or ")
		case cl.when != nil && !(ch.Type == Delete && len(ch.Entry.Attrs()) == 0):
			// A delete that carries no attributes is classified by base DN
			// and operations alone: there is nothing for `when` to test.
			v, err := ev.run(cl.when)
			if err != nil {
				return nil, err
			}
			if b, _ := v.(bool); !b {
				reason = "when is false"
			}
		}
		if reports != nil {
			*reports = append(*reports, ClassReport{Class: cl, Match: reason == "", Reason: reason})
		}
		if reason == "" {
			return cl, nil
		}
	}
	return nil, nil
}

// under reports whether the change's DN is at or below one of the bases.
func (ev *Evaluator) under(bases []*ldap.DN) bool {
	if !ev.dnOK {
		ev.dnOK = true
		ev.dn, _ = ldap.ParseDN(ev.ch.DN)
	}
	if ev.dn == nil {
		return false
	}
	for _, b := range bases {
		if b.EqualFold(ev.dn) || b.AncestorOfFold(ev.dn) {
			return true
		}
	}
	return false
}

func (ev *Evaluator) endpoint(cl *Class) (*Endpoint, error) {
	if cl.endpoint != nil {
		return cl.endpoint, nil
	}
	v, err := ev.run(cl.choose)
	if err != nil {
		return nil, err
	}
	e, ok := v.(*Endpoint)
	if !ok || e == nil {
		return nil, &EvalError{Pos: cl.choose.pos, DN: ev.ch.DN, What: cl.choose.what, Msg: fmt.Sprintf("want an endpoint, got %s", typeName(v))}
	}
	return e, nil
}

func (ev *Evaluator) lookup(e *Endpoint) (string, error) {
	if e.lookup == nil {
		return "", nil
	}
	v, err := ev.run(e.lookup)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok || s == "" {
		msg := "the lookup filter is empty: the entry lacks what the filter is built from"
		if v != nil && !ok {
			msg = "want a filter string, got " + typeName(v)
		}
		return "", &EvalError{Pos: e.lookup.pos, DN: ev.ch.DN, What: e.lookup.what, Msg: msg}
	}
	return s, nil
}

// RefersElsewhere reports whether the result's ref(…) values name DNs
// that may be resources of another endpoint than its own (a group's
// members): a bulk load applies it after the others.
func (r *Result) RefersElsewhere() bool {
	if r.Class == nil {
		return false
	}
	for i, m := range r.Class.Mappings {
		if !m.isRef || i >= len(r.values) {
			continue
		}
		refs, _ := r.values[i].(*Refs)
		if refs == nil || len(refs.DNs) == 0 {
			continue
		}
		for _, ep := range refs.Endpoints {
			if ep != r.Endpoint {
				return true
			}
		}
	}
	return false
}

// Value returns what a mapping of the result's class evaluated to (nil
// when it was not evaluated in this mode, or gave nothing).
func (r *Result) Value(m *Mapping) any {
	for i, x := range r.Class.Mappings {
		if x == m && i < len(r.values) {
			return r.values[i]
		}
	}
	return nil
}
