package builtins

import (
	"strings"
	"unicode"
)

var stringFuncs = []*Func{
	{
		Name:   "lower",
		Family: "strings",
		Sig:    []any{new(func(string) string)},
		Fn:     mapString("lower", strings.ToLower),
		Doc:    "lower returns s with all Unicode letters mapped to lower case. lower(nil) is nil.",
		Examples: []Example{
			{Expr: `lower(first(mail))`, Attrs: map[string][]string{"mail": {"Ann.Lee@Example.COM"}}, Want: "ann.lee@example.com"},
			{Expr: `lower("ÀÉÎ")`, Want: "àéî"},
			{Expr: `lower(first(mail))`, Attrs: map[string][]string{"mail": nil}, Want: nil},
		},
	},
	{
		Name:   "upper",
		Family: "strings",
		Sig:    []any{new(func(string) string)},
		Fn:     mapString("upper", strings.ToUpper),
		Doc: "upper returns s with all Unicode letters mapped to upper case, one letter at a time (ß stays ß). " +
			"upper(nil) is nil.",
		Examples: []Example{
			{Expr: `upper(first(c))`, Attrs: map[string][]string{"c": {"de"}}, Want: "DE"},
			{Expr: `upper("àéî")`, Want: "ÀÉÎ"},
			{Expr: `upper(first(c))`, Attrs: map[string][]string{"c": {}}, Want: nil},
		},
	},
	{
		Name:   "trim",
		Family: "strings",
		Sig:    []any{new(func(string) string)},
		Fn:     mapString("trim", strings.TrimSpace),
		Doc: "trim returns s without leading and trailing white space (Unicode White_Space, " +
			"which includes tabs, newlines and no-break spaces). trim(nil) is nil. " +
			"Unlike expr's builtin trim, it takes no cutset argument.",
		Examples: []Example{
			{Expr: `trim(first(sn))`, Attrs: map[string][]string{"sn": {"  Lee \t"}}, Want: "Lee"},
			{Expr: `trim("\u00a0x\n")`, Want: "x"},
			{Expr: `trim(first(sn))`, Attrs: map[string][]string{"sn": nil}, Want: nil},
		},
	},
	{
		Name:   "normalizeSpace",
		Family: "strings",
		Sig:    []any{new(func(string) string)},
		Fn:     mapString("normalizeSpace", normalizeSpace),
		Doc: "normalizeSpace returns s with leading and trailing white space removed and every inner run " +
			"of white space replaced by a single space, as LDAP matching rules treat insignificant spaces. " +
			"normalizeSpace(nil) is nil.",
		Examples: []Example{
			{Expr: `normalizeSpace(first(cn))`, Attrs: map[string][]string{"cn": {" Ann \t  Lee "}}, Want: "Ann Lee"},
			{Expr: `normalizeSpace("a\n\nb")`, Want: "a b"},
			{Expr: `normalizeSpace(first(cn))`, Attrs: map[string][]string{"cn": nil}, Want: nil},
		},
	},
	{
		Name:   "titleCase",
		Family: "strings",
		Sig:    []any{new(func(string) string)},
		Fn:     mapString("titleCase", titleCase),
		Doc: "titleCase returns s with the first letter of each word in title case and the other letters " +
			"in lower case; words are separated by white space and hyphens, so \"jean-luc PICARD\" becomes " +
			"\"Jean-Luc Picard\". It is not called title because title is an LDAP attribute. " +
			"Names such as McDonald lose their inner capitals. titleCase(nil) is nil.",
		Examples: []Example{
			{Expr: `titleCase(first(cn))`, Attrs: map[string][]string{"cn": {"jean-luc PICARD"}}, Want: "Jean-Luc Picard"},
			{Expr: `titleCase("élodie  durand")`, Want: "Élodie  Durand"},
			{Expr: `titleCase(first(cn))`, Attrs: map[string][]string{"cn": nil}, Want: nil},
		},
	},
	{
		Name:   "join",
		Family: "strings",
		Sig:    []any{new(func([]string, string) string), new(func([]any, string) string)},
		Fn:     join,
		Doc: "join returns the strings of list concatenated with sep between them; nil items are " +
			"skipped and empty strings are kept. When there is nothing to join (the list is nil or empty, " +
			"as for an absent attribute, or holds only nil items) join returns nil, so that " +
			"join(ou, \"/\") ?? \"none\" works.",
		Examples: []Example{
			{Expr: `join(ou, "/")`, Attrs: map[string][]string{"ou": {"Sales", "EMEA"}}, Want: "Sales/EMEA"},
			{Expr: `join([first(givenName), first(sn)], " ")`, Attrs: map[string][]string{"givenName": nil, "sn": {"Lee"}}, Want: "Lee"},
			{Expr: `join(["a", "", "b"], ",")`, Want: "a,,b"},
			{Expr: `join(ou, "/")`, Attrs: map[string][]string{"ou": nil}, Want: nil},
		},
	},
	{
		Name:   "split",
		Family: "strings",
		Sig:    []any{new(func(string, string) []string)},
		Fn:     split,
		Doc: "split returns the substrings of s between each occurrence of sep. An empty string and nil " +
			"give an empty list; an empty sep splits s into its UTF-8 characters.",
		Examples: []Example{
			{Expr: `split(first(mail), "@")`, Attrs: map[string][]string{"mail": {"ann@example.com"}}, Want: []string{"ann", "example.com"}},
			{Expr: `split("a,,b", ",")`, Want: []string{"a", "", "b"}},
			{Expr: `split(first(mail), "@")`, Attrs: map[string][]string{"mail": nil}, Want: []string{}},
		},
	},
	{
		Name:   "replace",
		Family: "strings",
		Sig:    []any{new(func(string, string, string) string)},
		Fn:     replace,
		Doc: "replace returns s with every non-overlapping occurrence of old replaced by new. " +
			"replace(nil, old, new) is nil.",
		Examples: []Example{
			{Expr: `replace(first(telephoneNumber), " ", "")`, Attrs: map[string][]string{"telephoneNumber": {"+49 30 1234"}}, Want: "+49301234"},
			{Expr: `replace("a.b.c", ".", "-")`, Want: "a-b-c"},
			{Expr: `replace(first(telephoneNumber), " ", "")`, Attrs: map[string][]string{"telephoneNumber": nil}, Want: nil},
		},
	},
	{
		Name:      "regexMatch",
		Family:    "strings",
		Sig:       []any{new(func(string, string) bool)},
		Fn:        regexMatch,
		ConstArgs: map[int]func(string) error{1: validRegexp},
		Doc: "regexMatch reports whether s contains a match of the regular expression pattern " +
			"(Go regexp syntax, RE2; anchor with ^ and $ to match the whole string). " +
			"regexMatch(nil, pattern) is false. A literal pattern is checked when the script is loaded.",
		Examples: []Example{
			{Expr: `regexMatch(first(employeeNumber), "^[0-9]{6}$")`, Attrs: map[string][]string{"employeeNumber": {"004711"}}, Want: true},
			{Expr: `regexMatch("svc-backup", "^svc-")`, Want: true},
			{Expr: `regexMatch(first(employeeNumber), "^[0-9]+$")`, Attrs: map[string][]string{"employeeNumber": nil}, Want: false},
			{Expr: `regexMatch("x", "a(")`, Err: "regexMatch: invalid pattern: error parsing regexp: missing closing )"},
		},
	},
	{
		Name:      "regexReplace",
		Family:    "strings",
		Sig:       []any{new(func(string, string, string) string)},
		Fn:        regexReplace,
		ConstArgs: map[int]func(string) error{1: validRegexp},
		Doc: "regexReplace returns s with every match of the regular expression pattern (Go regexp syntax) " +
			"replaced by repl, in which $1 or ${name} stand for the text of a capturing group " +
			"(write $$ for a literal $). regexReplace(nil, pattern, repl) is nil.",
		Examples: []Example{
			{Expr: `regexReplace(first(mail), "@.*$", "@example.org")`, Attrs: map[string][]string{"mail": {"ann@corp.example.com"}}, Want: "ann@example.org"},
			{Expr: `regexReplace("Lee, Ann", "^(\\w+), (\\w+)$", "$2 $1")`, Want: "Ann Lee"},
			{Expr: `regexReplace(first(mail), "@.*$", "")`, Attrs: map[string][]string{"mail": nil}, Want: nil},
		},
	},
}

// mapString makes a Fn applying f to its one string argument. When f returns
// its input unchanged, Fn returns the argument as it came, which saves
// boxing a new string into an interface.
func mapString(name string, f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		if err := arity(name, args, 1); err != nil {
			return nil, err
		}
		s, ok, err := str(name, "", args[0])
		if !ok {
			return nil, err
		}
		r := f(s)
		if r == s {
			return args[0], nil
		}
		return r, nil
	}
}

func normalizeSpace(s string) string {
	var b strings.Builder
	for word := range strings.FieldsSeq(s) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(word)
	}
	return b.String()
}

func titleCase(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || r == '-':
			start = true
		case start && unicode.IsLetter(r):
			r = unicode.ToTitle(r)
			start = false
		default:
			r = unicode.ToLower(r)
			start = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func join(args ...any) (any, error) {
	if err := arity("join", args, 2); err != nil {
		return nil, err
	}
	sep, err := reqStr("join", "sep", args[1])
	if err != nil {
		return nil, err
	}
	switch l := args[0].(type) {
	case nil:
		return nil, nil
	case []string:
		if len(l) == 0 {
			return nil, nil
		}
		return strings.Join(l, sep), nil
	case string:
		return nil, typeErr("join", "", "list of strings", l)
	}
	var b strings.Builder
	n := 0
	ok, err := list("join", args[0], func(s string) {
		if n > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
		n++
	})
	if !ok || n == 0 {
		return nil, err
	}
	return b.String(), nil
}

func split(args ...any) (any, error) {
	if err := arity("split", args, 2); err != nil {
		return nil, err
	}
	s, ok, err := str("split", "", args[0])
	if err != nil {
		return nil, err
	}
	sep, err := reqStr("split", "sep", args[1])
	if err != nil {
		return nil, err
	}
	if !ok || s == "" {
		return []string{}, nil
	}
	return strings.Split(s, sep), nil
}

func replace(args ...any) (any, error) {
	if err := arity("replace", args, 3); err != nil {
		return nil, err
	}
	s, ok, err := str("replace", "", args[0])
	if err != nil {
		return nil, err
	}
	old, err := reqStr("replace", "old", args[1])
	if err != nil {
		return nil, err
	}
	repl, err := reqStr("replace", "new", args[2])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	r := strings.ReplaceAll(s, old, repl)
	if r == s {
		return args[0], nil
	}
	return r, nil
}

func regexMatch(args ...any) (any, error) {
	if err := arity("regexMatch", args, 2); err != nil {
		return nil, err
	}
	s, ok, err := str("regexMatch", "", args[0])
	if err != nil {
		return nil, err
	}
	re, err := pattern("regexMatch", args[1])
	if err != nil {
		return nil, err
	}
	return ok && re.MatchString(s), nil
}

func regexReplace(args ...any) (any, error) {
	if err := arity("regexReplace", args, 3); err != nil {
		return nil, err
	}
	s, ok, err := str("regexReplace", "", args[0])
	if err != nil {
		return nil, err
	}
	re, err := pattern("regexReplace", args[1])
	if err != nil {
		return nil, err
	}
	repl, err := reqStr("regexReplace", "repl", args[2])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return re.ReplaceAllString(s, repl), nil
}
