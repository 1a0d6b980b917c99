package lang

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/builtins"
	"github.com/scimsync/scimsync/engine/scim"
)

// LoadOptions is how a load reaches the outside world: env() and file() in
// settings are the only I/O a script does, and only at load.
type LoadOptions struct {
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads a file named by file() or checked by a setting; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

func (o *LoadOptions) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (o *LoadOptions) readFile(name string) ([]byte, error) {
	if o.ReadFile != nil {
		return o.ReadFile(name)
	}
	return os.ReadFile(name)
}

// LoadFile reads and compiles a pipe script from a file.
func LoadFile(path string, opts LoadOptions) (*Pipe, error) {
	data, err := opts.readFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, string(data), opts)
}

// Load compiles a pipe script. name is the path shown in diagnostics and
// the base for relative paths in the script. On error it returns
// *Diagnostics holding every problem found, sorted by position.
func Load(name, text string, opts LoadOptions) (*Pipe, error) {
	c := &compiler{
		src:  NewSource(name, text),
		opts: &opts,
		p:    &Pipe{Query: "get", Update: "patch"},
	}
	c.p.src = c.src
	sf := &settingsFuncs{opts: &opts, dir: filepath.Dir(name)}
	c.settings = sf.options()
	f, diags := parse(text)
	for _, d := range diags {
		c.add(d)
	}
	if len(diags) == 0 {
		c.compile(f)
	}
	if len(c.diags.List) > 0 {
		// Warnings go with the errors, so that one check shows everything.
		c.diags.List = append(c.diags.List, c.warns...)
		c.diags.Source = c.src
		c.diags.sort()
		return nil, &c.diags
	}
	if len(c.warns) > 0 {
		c.p.warnings = &Diagnostics{Source: c.src, List: c.warns}
		c.p.warnings.sort()
	}
	return c.p, nil
}

// compiler turns the syntax tree into a Pipe, collecting diagnostics.
type compiler struct {
	src      *Source
	opts     *LoadOptions
	p        *Pipe
	diags    Diagnostics
	warns    []*Diagnostic // problems that do not stop the load
	settings []expr.Option // for load-time settings

	known    map[string]string // lower-case attribute name -> itself
	spelled  []string          // attribute names as documented, for "did you mean"
	envTypes map[string]any    // the per-change variables' types
	used     map[string]bool   // attributes expressions read
}

func (c *compiler) add(d *rawDiag) {
	c.diags.List = append(c.diags.List, &Diagnostic{Pos: c.src.Pos(d.off), Len: d.n, Msg: d.msg, Hint: d.hint})
}

func (c *compiler) errorf(off, n int, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Pos: c.src.Pos(off), Len: n, Msg: fmt.Sprintf(format, args...)}
	c.diags.List = append(c.diags.List, d)
	return d
}

// warnf records a warning: the script loads, but some changes will fail.
func (c *compiler) warnf(off, n int, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Pos: c.src.Pos(off), Len: n, Msg: fmt.Sprintf(format, args...), Warning: true}
	c.warns = append(c.warns, d)
	return d
}

// blockSpecs are the settings each block accepts.
var blockSpecs = map[string]map[string]spec{
	"source": {
		"file":         {kind: kPath},
		"url":          {kind: kStrings},
		"bindDN":       {kind: kString},
		"password":     {kind: kSecret},
		"base":         {kind: kStrings},
		"caFile":       {kind: kPath},
		"startTLS":     {kind: kBool},
		"insecure":     {kind: kBool},
		"timeout":      {kind: kDuration},
		"pollInterval": {kind: kDuration},
		"pageSize":     {kind: kInt},
		"identity":     {kind: kString},
		"attributes":   {kind: kStrings},
		"passwordKey":  {kind: kSecret},
	},
	"scim": {
		"url":          {kind: kString, required: true},
		"auth":         {kind: kString, enum: []string{"none", "basic", "bearer", "oauth2"}},
		"username":     {kind: kString},
		"password":     {kind: kSecret},
		"token":        {kind: kSecret},
		"tokenURL":     {kind: kString},
		"clientId":     {kind: kString},
		"clientSecret": {kind: kSecret},
		"scopes":       {kind: kStrings},
		"caFile":       {kind: kPath},
		"certFile":     {kind: kPath},
		"keyFile":      {kind: kPath},
		"insecure":     {kind: kBool},
		"timeout":      {kind: kDuration},
		"maxAttempts":  {kind: kInt},
		"maxConns":     {kind: kInt},
		"rate":         {kind: kInt},
		"query":        {kind: kString, enum: []string{"get", "post"}},
		"update":       {kind: kString, enum: []string{"patch", "put"}},
		"maxPatchOps":  {kind: kInt},
		"patchFilters": {kind: kString, enum: []string{"filter", "replace"}},
		"passwords":    {kind: kString, enum: []string{"send", "skip"}},
		"list":         {kind: kBool},
		// RFC 7644 §3.7 Bulk (bulksettings.go).
		"bulk":              {kind: kString, enum: []string{"auto", "on", "off"}},
		"bulkMaxOperations": {kind: kInt},
		"bulkMaxPayload":    {kind: kInt},
		// The mass-delete guard (engine.DeleteGuard); flags override them.
		"maxDeletes":        {kind: kInt},
		"maxDeletesPercent": {kind: kInt},
		"deleteWindow":      {kind: kDuration},
	},
	"endpoint": {
		"path":    {kind: kString, required: true},
		"schemas": {kind: kStrings, required: true},
		"type":    {kind: kString},
		"adopt":   {kind: kBool},
		"lookup":  {kind: kExpr},
	},
	"class": {
		"base":       {kind: kStrings},
		"when":       {kind: kExpr},
		"endpoint":   {kind: kExpr, required: true},
		"operations": {kind: kStrings, enum: []string{"create", "modify", "delete"}},
		"onDelete":   {kind: kString, enum: []string{"delete", "deactivate"}},
		"onLeave":    {kind: kString, enum: []string{"delete", "deactivate", "keep"}},
	},
}

var sourceKinds = []string{"ldif", "changelog", "syncrepl", "dirsync"}

// settingsOf evaluates a block's load-time settings and returns them by
// name, with the per-change expressions left as text.
func (c *compiler) settingsOf(b *block) (vals map[string]any, exprs map[string]*setting) {
	specs := blockSpecs[b.kind]
	vals, exprs = map[string]any{}, map[string]*setting{}
	seen := map[string]*setting{}
	for _, s := range b.settings {
		sp, ok := specs[s.key]
		if !ok {
			names := make([]string, 0, len(specs))
			for k := range specs {
				names = append(names, k)
			}
			sort.Strings(names)
			d := c.errorf(s.keyOff, len(s.key), "unknown setting %s in %s block", s.key, b.kind)
			if sug := suggest(s.key, names); sug != "" {
				d.Msg += fmt.Sprintf(" (did you mean %s?)", sug)
				seen[sug] = s // reported here, not again as missing
			} else {
				d.Hint = "settings here: " + strings.Join(names, ", ")
			}
			continue
		}
		if prev := seen[s.key]; prev != nil {
			c.errorf(s.keyOff, len(s.key), "%s is set twice (first at line %d)", s.key, c.src.Pos(prev.keyOff).Line)
			continue
		}
		seen[s.key] = s
		if sp.kind == kExpr {
			exprs[s.key] = s
			continue
		}
		if v, ok := c.evalSetting(s, sp); ok {
			vals[s.key] = v
		}
	}
	for k, sp := range specs {
		if sp.required && seen[k] == nil {
			label := b.kind
			if b.label != "" {
				label += " " + b.label
			}
			c.errorf(b.off, len(b.kind), "%s block needs %s", label, k)
		}
	}
	return vals, exprs
}

func (c *compiler) compile(f *script) {
	p := c.p
	p.Name = f.name
	if f.name == "" {
		c.diags.List = append(c.diags.List, &Diagnostic{Pos: c.src.Pos(0), Msg: `the script does not name its pipe`, Hint: `start it with a line such as: pipe "people-to-scim"`})
	}
	var sources, scims, endpoints, classes []*block
	for _, b := range f.blocks {
		switch b.kind {
		case "source":
			sources = append(sources, b)
		case "scim":
			scims = append(scims, b)
		case "endpoint":
			endpoints = append(endpoints, b)
		case "class":
			classes = append(classes, b)
		}
	}
	one := func(what string, bs []*block) *block {
		if len(bs) == 0 {
			c.diags.List = append(c.diags.List, &Diagnostic{Pos: c.src.Pos(len(c.src.Text)), Msg: fmt.Sprintf("the script has no %s block", what)})
			return nil
		}
		for _, b := range bs[1:] {
			c.errorf(b.off, len(b.kind), "a pipe has one %s block (the first is at line %d)", what, c.src.Pos(bs[0].off).Line)
		}
		return bs[0]
	}
	if b := one("source", sources); b != nil {
		c.source(b)
	}
	if b := one("scim", scims); b != nil {
		c.scimBlock(b)
	}
	c.vocabulary()
	for _, b := range endpoints {
		c.endpointHead(b)
	}
	if len(endpoints) == 0 {
		c.diags.List = append(c.diags.List, &Diagnostic{Pos: c.src.Pos(len(c.src.Text)), Msg: "the script has no endpoint block", Hint: `declare one, e.g. endpoint Users { path = "/Users" … }`})
	}
	c.envTypes = c.changeEnv()
	for i, b := range endpoints {
		c.endpointLookup(b, p.Endpoints[i])
	}
	if len(classes) == 0 {
		c.diags.List = append(c.diags.List, &Diagnostic{Pos: c.src.Pos(len(c.src.Text)), Msg: "the script has no class block", Hint: "a class says which entries go to which endpoint and how they map"})
	}
	names := map[string]int{}
	for _, b := range classes {
		if off, dup := names[b.label]; dup {
			c.errorf(b.labelOff, len(b.label), "class %s is declared twice (first at line %d)", b.label, c.src.Pos(off).Line)
			continue
		}
		names[b.label] = b.labelOff
		c.class(b)
	}
	c.passwordSourceChecks()
	// The attributes read by some expression, in a stable order.
	for a := range c.used {
		p.attrs = append(p.attrs, a)
	}
	sort.Strings(p.attrs)
	p.known, p.spelled, p.envTypes = c.known, c.spelled, c.envTypes
	p.env = make(map[string]any, len(p.attrs)+len(changeVars)+len(p.Endpoints))
	for _, e := range p.Endpoints {
		p.env[e.Name] = e
	}
}

func (c *compiler) source(b *block) {
	s := &c.p.Source
	s.Kind, s.Pos = b.label, c.src.Pos(b.off)
	if !contains(sourceKinds, b.label) {
		d := c.errorf(b.labelOff, len(b.label), "unknown source kind %s, expected %s", b.label, strings.Join(sourceKinds, ", "))
		if sug := suggest(b.label, sourceKinds); sug != "" {
			d.Msg += fmt.Sprintf(" (did you mean %s?)", sug)
		}
	}
	vals, _ := c.settingsOf(b)
	str := func(k string) string { v, _ := vals[k].(string); return v }
	strs := func(k string) []string { v, _ := vals[k].([]string); return v }
	s.File = c.path(str("file"))
	s.URLs = strs("url")
	s.BindDN = str("bindDN")
	s.Password, _ = vals["password"].(secretT)
	s.Base = strs("base")
	s.CAFile = c.path(str("caFile"))
	s.StartTLS, _ = vals["startTLS"].(bool)
	s.Insecure, _ = vals["insecure"].(bool)
	s.Timeout, _ = vals["timeout"].(durationT)
	s.PollInterval, _ = vals["pollInterval"].(durationT)
	s.PageSize, _ = vals["pageSize"].(int)
	s.Identity = str("identity")
	s.Attributes = strs("attributes")
	s.PasswordKey, _ = vals["passwordKey"].(secretT)
	for _, dn := range s.Base {
		if _, err := ldap.ParseDN(dn); err != nil {
			c.settingError(b, "base", "base: invalid DN: %v", err)
		}
	}
	if _, ok := vals["passwordKey"]; ok && b.label != "changelog" {
		c.settingError(b, "passwordKey", "passwordKey applies to a changelog source only (PingDirectory's ds-changelog-encrypted-password)")
	}
	switch b.label {
	case "ldif":
		if s.File == "" && len(c.diags.List) == 0 {
			c.errorf(b.off, len(b.kind), "source ldif needs file")
		}
		for _, k := range []string{"url", "bindDN", "password", "pollInterval"} {
			if _, ok := vals[k]; ok {
				c.settingError(b, k, "%s does not apply to an ldif source", k)
			}
		}
	case "changelog", "syncrepl", "dirsync":
		if _, ok := vals["url"]; !ok {
			c.errorf(b.off, len(b.kind), "source %s needs url", b.label)
		}
		if _, ok := vals["file"]; ok {
			c.settingError(b, "file", "file applies to an ldif source only")
		}
		for _, u := range s.URLs {
			if !strings.HasPrefix(strings.ToLower(u), "ldap://") && !strings.HasPrefix(strings.ToLower(u), "ldaps://") {
				c.settingError(b, "url", "url: want ldap:// or ldaps:// URLs")
			}
		}
	}
}

// settingError reports a problem with a setting's value at the setting.
func (c *compiler) settingError(b *block, key, format string, args ...any) {
	for _, s := range b.settings {
		if s.key == key {
			c.errorf(s.expr.off, len([]rune(s.expr.text)), format, args...)
			return
		}
	}
	c.errorf(b.off, len(b.kind), format, args...)
}

// path resolves a path relative to the script's folder.
func (c *compiler) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.src.Name), p)
}

func (c *compiler) scimBlock(b *block) {
	vals, _ := c.settingsOf(b)
	str := func(k string) string { v, _ := vals[k].(string); return v }
	cfg := &c.p.SCIM
	cfg.URL = str("url")
	cfg.Auth = scim.AuthType(str("auth"))
	cfg.Username = str("username")
	cfg.Password, _ = vals["password"].(secretT)
	cfg.Token, _ = vals["token"].(secretT)
	cfg.TokenURL = str("tokenURL")
	cfg.ClientID = str("clientId")
	cfg.ClientSecret, _ = vals["clientSecret"].(secretT)
	cfg.Scopes, _ = vals["scopes"].([]string)
	cfg.CAFile = c.path(str("caFile"))
	cfg.CertFile = c.path(str("certFile"))
	cfg.KeyFile = c.path(str("keyFile"))
	cfg.Insecure, _ = vals["insecure"].(bool)
	cfg.Timeout, _ = vals["timeout"].(durationT)
	cfg.MaxAttempts, _ = vals["maxAttempts"].(int)
	cfg.MaxConns, _ = vals["maxConns"].(int)
	if n, ok := vals["rate"].(int); ok {
		cfg.Rate = float64(n)
	}
	if q := str("query"); q != "" {
		c.p.Query = q
	}
	if u := str("update"); u != "" {
		c.p.Update = u
	}
	c.p.PatchFilters = str("patchFilters")
	c.p.SkipPasswords = str("passwords") == "skip"
	if list, ok := vals["list"].(bool); ok {
		c.p.NoList = !list
	}
	c.deleteGuard(b, vals)
	c.bulkSettings(b, vals)
	if n, ok := vals["maxPatchOps"].(int); ok {
		if n < 1 {
			c.settingError(b, "maxPatchOps", "maxPatchOps: want 1 or more operations per PATCH request")
		}
		c.p.MaxPatchOps = n
	}
	if cfg.Auth == "" {
		// Inferred from what is set, so the common cases need no auth line.
		switch {
		case cfg.TokenURL != "" || cfg.ClientID != "" || !cfg.ClientSecret.IsZero():
			cfg.Auth = scim.AuthOAuth2
		case !cfg.Token.IsZero():
			cfg.Auth = scim.AuthBearer
		case cfg.Username != "":
			cfg.Auth = scim.AuthBasic
		default:
			cfg.Auth = scim.AuthNone
		}
	}
	if len(c.diags.List) == 0 {
		if err := cfg.Validate(); err != nil {
			c.errorf(b.off, len(b.kind), "%s", strings.TrimPrefix(err.Error(), "scim: "))
		}
	}
}

// vocabulary builds the attribute names expressions may use.
func (c *compiler) vocabulary() {
	c.known = map[string]string{}
	c.used = map[string]bool{}
	for _, a := range append(append([]string{}, knownAttributes...), c.p.Source.Attributes...) {
		lc := lowerASCII(a)
		if _, ok := c.known[lc]; !ok {
			c.spelled = append(c.spelled, a)
		}
		c.known[lc] = lc
	}
}

func (c *compiler) endpointHead(b *block) {
	e := &Endpoint{Name: b.label, Pos: c.src.Pos(b.labelOff)}
	if prev := c.p.Endpoint(b.label); prev != nil {
		c.errorf(b.labelOff, len(b.label), "endpoint %s is declared twice (first at line %d)", b.label, prev.Pos.Line)
	}
	if _, isAttr := c.known[lowerASCII(b.label)]; isAttr || isChangeVar(b.label) || builtins.Lookup(b.label) != nil {
		c.errorf(b.labelOff, len(b.label), "endpoint name %s is already the name of an attribute, variable or function", b.label)
	}
	c.p.Endpoints = append(c.p.Endpoints, e)
	vals, _ := c.settingsOf(b)
	e.Path, _ = vals["path"].(string)
	e.Schemas, _ = vals["schemas"].([]string)
	e.Type, _ = vals["type"].(string)
	e.Adopt, _ = vals["adopt"].(bool)
	if e.Path != "" && !strings.HasPrefix(e.Path, "/") {
		c.settingError(b, "path", `path: want a path starting with "/", such as "/Users"`)
	}
	for i, urn := range e.Schemas {
		s := scim.Builtin(urn)
		if i == 0 {
			e.core = s
		} else if s != nil {
			e.exts = append(e.exts, s)
		}
		if !strings.HasPrefix(strings.ToLower(urn), "urn:") {
			c.settingError(b, "schemas", "schemas: want schema URNs such as %s", scim.URNUser)
		}
	}
	if e.Type == "" {
		if e.core != nil {
			e.Type = e.core.Name
		} else {
			e.Type = strings.TrimSuffix(strings.TrimPrefix(e.Path, "/"), "s")
		}
	}
}

func (c *compiler) endpointLookup(b *block, e *Endpoint) {
	// The lookup is compiled after every endpoint is declared, so that the
	// change environment knows them all; settingsOf already checked it.
	for _, s := range b.settings {
		if s.key == "lookup" {
			e.lookup = c.expression(s.expr, "lookup of endpoint "+e.Name, wantString)
			return
		}
	}
}

func isChangeVar(name string) bool {
	for _, v := range changeVars {
		if v.name == name {
			return true
		}
	}
	return false
}

// changeEnv is the type environment of per-change expressions.
func (c *compiler) changeEnv() map[string]any {
	env := make(map[string]any, len(c.known)+8)
	for lc := range c.known {
		env[lc] = []string(nil)
	}
	env["dn"] = ""
	env["oldDN"] = ""
	env["changeType"] = ""
	env["changed"] = []string(nil)
	env[budgetVar] = (*meter)(nil)
	env["newPassword"] = nil // a string or nil: typed as any, so that newPassword == nil and ?? check
	for _, e := range c.p.Endpoints {
		env[e.Name] = e
	}
	return env
}

// want is the type an expression must produce.
type want int

const (
	wantAny want = iota
	wantBool
	wantString
	wantEndpoint
)

var endpointType = reflect.TypeOf((*Endpoint)(nil))

// expression compiles a per-change expression against the change
// environment; errors become diagnostics at their place in the file.
func (c *compiler) expression(t exprText, what string, w want) *expression {
	v := &identVisitor{c: c}
	opts := []expr.Option{expr.Env(c.envTypes), expr.Patch(v)}
	opts = append(opts, builtins.Options()...)
	opts = append(opts, refFunction)
	opts = append(opts, budgetOptions()...) // after identVisitor: it never sees the budget's calls
	if w == wantBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(t.text, opts...)
	v.finish()
	if len(v.errs) > 0 {
		for _, d := range v.errs {
			d.off = t.off + runeOffsetToByte(t.text, d.off) // expr counts runes
			c.add(d)
		}
		return nil
	}
	if err == nil {
		err = builtins.CheckConstArgs(prog.Node()) // literal arguments such as regex patterns
	}
	if err != nil {
		c.exprError(t, err, v)
		return nil
	}
	for a := range v.used {
		c.used[a] = true
	}
	typ := prog.Node().Type()
	bad := ""
	switch w {
	case wantString:
		if typ != nil && typ.Kind() != reflect.Interface && typ.Kind() != reflect.String {
			bad = "a string"
		}
	case wantEndpoint:
		if typ == nil || typ != endpointType && typ.Kind() != reflect.Interface {
			bad = "an endpoint name"
		}
	}
	if bad != "" {
		c.errorf(t.off, len([]rune(t.text)), "%s: want %s, got %s", what, bad, exprTypeName(typ))
		return nil
	}
	e := &expression{prog: prog, text: t, pos: c.src.Pos(t.off), what: what}
	// $env reaches every attribute the pipe binds, password attributes
	// included, whatever name or key it is indexed with: an expression that
	// reads it is as secret as one that names userPassword.
	e.secret = v.whole || v.vars["newPassword"]
	for a := range v.used {
		e.secret = e.secret || IsSecretAttribute(a)
	}
	e.reads = readsOf(v)
	return e
}

// exprTypeName names an expression's static type the way a script writer
// thinks of it.
func exprTypeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	switch {
	case t == endpointType:
		return "an endpoint"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "a list of strings"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map:
		return "a map"
	case t.Kind() == reflect.Bool:
		return "a bool"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "a number"
	}
	return t.String()
}

// exprError turns an error from expr into a diagnostic at the right place
// in the file, without expr's own snippet, adding "did you mean".
func (c *compiler) exprError(t exprText, err error, v *identVisitor) {
	var fe *file.Error
	if !errors.As(err, &fe) {
		fe = &file.Error{Message: err.Error()}
	}
	off := t.off + runeOffsetToByte(t.text, fe.From)
	n := fe.To - fe.From
	msg := strings.TrimSpace(fe.Message)
	if got, ok := strings.CutPrefix(msg, "expected bool, but got "); ok {
		msg = "want a bool (true or false), but the expression gives a " + got
		n = len([]rune(t.text))
		off = t.off
	}
	d := &Diagnostic{Pos: c.src.Pos(off), Len: n, Msg: msg}
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		d.Len = len([]rune(name))
		cands := append([]string{}, c.spelled...)
		for _, cv := range changeVars {
			cands = append(cands, cv.name)
		}
		for _, e := range c.p.Endpoints {
			cands = append(cands, e.Name)
		}
		if sug := suggest(name, cands); sug != "" {
			d.Msg += fmt.Sprintf(" (did you mean %s?)", sug)
		} else {
			d.Hint = "an LDAP attribute not in the known vocabulary must be declared: source { attributes = [\"" + name + "\"] }"
		}
	} else if strings.HasPrefix(msg, "unknown func ") || strings.Contains(msg, "is not a function") || strings.HasPrefix(msg, "unknown function") {
		name := fnNameIn(msg)
		if name != "" {
			d.Len = len([]rune(name))
			if sug := suggest(name, allFuncNames()); sug != "" {
				d.Msg += fmt.Sprintf(" (did you mean %s?)", sug)
			}
		}
	}
	if strings.Contains(t.text, " # ") && strings.Contains(msg, "unexpected token") {
		d.Hint = "a # inside brackets is expr's closure argument; use // for a comment there"
	}
	c.diags.List = append(c.diags.List, d)
}

// fnNameIn picks the function name out of expr's "unknown func NAME" style
// messages.
func fnNameIn(msg string) string {
	for _, pre := range []string{"unknown func ", "unknown function "} {
		if rest, ok := strings.CutPrefix(msg, pre); ok {
			return strings.Fields(rest + " ")[0]
		}
	}
	if i := strings.Index(msg, " is not a function"); i > 0 {
		f := strings.Fields(msg[:i])
		return strings.Trim(f[len(f)-1], "()")
	}
	return ""
}

// allFuncNames lists every function an expression can call.
func allFuncNames() []string {
	names := append([]string{"ref"}, builtins.Names()...)
	names = append(names, exprBuiltinNames...)
	return names
}

// exprBuiltinNames are expr's own functions that stay available.
var exprBuiltinNames = strings.Fields(`all none any one filter map find findIndex findLast findLastIndex count sum
	groupBy sortBy reduce len type abs ceil floor round int float string trimPrefix trimSuffix
	splitAfter repeat indexOf lastIndexOf hasPrefix hasSuffix max min mean median toJSON fromJSON
	toBase64 fromBase64 duration date get take keys toPairs fromPairs reverse uniq concat flatten sort last`)

// identVisitor resolves attribute names in an expression: an identifier
// that names an attribute in any case becomes its lower-case form, the key
// the evaluator fills; attrs["name-with-dashes"] becomes that key too.
type identVisitor struct {
	c         *compiler
	used      map[string]bool
	vars      map[string]bool // change variables read: dn, oldDN, changeType, changed
	whole     bool            // reads $env: any attribute
	rewritten map[*ast.IdentifierNode]string
	unknown   []*ast.IdentifierNode
	errs      []*rawDiag // offsets relative to the expression
}

// Visit implements ast.Visitor.
func (v *identVisitor) Visit(node *ast.Node) {
	if v.used == nil {
		v.used = map[string]bool{}
		v.rewritten = map[*ast.IdentifierNode]string{}
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if isChangeVar(n.Value) {
			if v.vars == nil {
				v.vars = map[string]bool{}
			}
			v.vars[n.Value] = true
			return
		}
		if v.c.p.Endpoint(n.Value) != nil {
			return
		}
		if n.Value == "$env" {
			v.whole = true
		}
		if lc, ok := v.c.known[lowerASCII(n.Value)]; ok {
			v.rewritten[n] = n.Value
			n.Value = lc
			v.used[lc] = true
			return
		}
		// Unknown so far: it may still be a function (the call comes next)
		// or a let variable (its declaration comes after its uses).
		v.unknown = append(v.unknown, n)
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		if orig, ok := v.rewritten[id]; ok {
			id.Value = orig // a function name, not an attribute
			delete(v.rewritten, id)
		}
		v.forget(id, "")
		if !isFunc(id.Value) {
			loc := id.Location()
			d := &rawDiag{off: loc.From, n: len([]rune(id.Value)), msg: "unknown function " + id.Value}
			if sug := suggest(id.Value, allFuncNames()); sug != "" {
				d.msg += fmt.Sprintf(" (did you mean %s?)", sug)
			} else {
				d.hint = "the functions are listed in builtins/FUNCTIONS.md"
			}
			v.errs = append(v.errs, d)
			return
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || id.Value != "attrs" {
			return
		}
		loc := n.Location()
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			v.errs = append(v.errs, &rawDiag{off: loc.From, msg: `attrs[…] needs the attribute name as a string literal, e.g. attrs["ds-pwp-account-disabled"]`})
			return
		}
		v.forget(id, "")
		lc, ok := v.c.known[lowerASCII(prop.Value)]
		if !ok {
			d := &rawDiag{off: loc.From, msg: fmt.Sprintf("unknown attribute %s", prop.Value)}
			if sug := suggest(prop.Value, v.c.spelled); sug != "" {
				d.msg += fmt.Sprintf(" (did you mean %s?)", sug)
			} else {
				d.hint = `declare it: source { attributes = ["` + prop.Value + `"] }`
			}
			v.errs = append(v.errs, d)
			return
		}
		v.used[lc] = true
		ast.Patch(node, &ast.IdentifierNode{Value: lc})
	case *ast.VariableDeclaratorNode:
		// A let variable that shares an attribute's name is the variable.
		restore := &letVisitor{name: n.Name, v: v}
		ast.Walk(&n.Expr, restore)
		v.forget(nil, n.Name)
	}
}

// forget drops an identifier (or every one with a name) from the unknown
// list: it turned out to be a function or a let variable.
func (v *identVisitor) forget(id *ast.IdentifierNode, name string) {
	kept := v.unknown[:0]
	for _, u := range v.unknown {
		if u != id && (name == "" || u.Value != name) {
			kept = append(kept, u)
		}
	}
	v.unknown = kept
}

// finish reports the identifiers that are neither attributes, variables,
// endpoints, functions nor let variables.
func (v *identVisitor) finish() {
	for _, u := range v.unknown {
		if strings.HasPrefix(u.Value, "$") {
			continue // $env, expr's own
		}
		loc := u.Location()
		d := &rawDiag{off: loc.From, n: len([]rune(u.Value)), msg: "unknown name " + u.Value}
		cands := append([]string{}, v.c.spelled...)
		for _, cv := range changeVars {
			cands = append(cands, cv.name)
		}
		for _, e := range v.c.p.Endpoints {
			cands = append(cands, e.Name)
		}
		if sug := suggest(u.Value, cands); sug != "" {
			d.msg += fmt.Sprintf(" (did you mean %s?)", sug)
		} else {
			d.hint = `an attribute outside the known LDAP vocabulary must be declared: source { attributes = ["` + u.Value + `"] }`
		}
		v.errs = append(v.errs, d)
	}
	v.unknown = nil
}

// isFunc reports whether an expression can call name.
func isFunc(name string) bool {
	if name == "ref" || builtins.Lookup(name) != nil {
		return true
	}
	for _, n := range exprBuiltinNames {
		if n == name {
			return true
		}
	}
	return false
}

type letVisitor struct {
	name string
	v    *identVisitor
}

func (l *letVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && l.v.rewritten[id] == l.name {
		id.Value = l.name
		delete(l.v.rewritten, id)
	}
}

// suggest returns the closest candidate for "did you mean", or "".
func suggest(name string, candidates []string) string {
	return scim.Suggest(name, candidates)
}
