package builtins

import (
	"fmt"
	"strings"
)

var ldapFuncs = []*Func{
	{
		Name:   "first",
		Family: "ldap",
		Sig: []any{
			new(func([]string) string),
			new(func(string) string),
			new(func(any) any),
		},
		Fn: first,
		Doc: "first returns the first value of a multi-valued attribute, or nil if the list is absent or " +
			"empty; it is the usual way to turn an attribute into a string. A plain string is returned as " +
			"it is, so first(dn) is dn. For a list of type any (an array literal or a map() result) the " +
			"first item is returned whatever its type; but for an argument of unknown type, such as a " +
			"parseJSON result, expr's checker picks the first signature and types the result as a string " +
			"(index such values instead: parseJSON(s)[0]). first(nil) is nil.",
		Examples: []Example{
			{Expr: `first(mail)`, Attrs: map[string][]string{"mail": {"ann@example.com", "ann.lee@example.com"}}, Want: "ann@example.com"},
			{Expr: `first(dn)`, DN: "uid=ann,ou=people,dc=example,dc=com", Want: "uid=ann,ou=people,dc=example,dc=com"},
			{Expr: `first(mail)`, Attrs: map[string][]string{"mail": nil}, Want: nil},
			{Expr: `first(mail) ?? "none"`, Attrs: map[string][]string{"mail": {}}, Want: "none"},
		},
	},
	{
		Name:   "values",
		Family: "ldap",
		Sig:    []any{new(func(...any) []string)},
		Fn:     values,
		Doc: "values returns one list of the strings in its arguments, each a string or a list of " +
			"strings, in order: nil and empty strings are dropped and exact duplicates are kept only once. " +
			"It merges attributes, as in values(mail, proxyAddresses). values(nil) and values() are " +
			"empty lists.",
		Examples: []Example{
			{Expr: `values(mail, "ann@example.org", mailAlternateAddress)`, Attrs: map[string][]string{"mail": {"ann@example.com"}, "mailAlternateAddress": {"ann@example.org", "", "a.lee@example.com"}}, Want: []string{"ann@example.com", "ann@example.org", "a.lee@example.com"}},
			{Expr: `values(first(givenName), first(sn))`, Attrs: map[string][]string{"givenName": nil, "sn": {"Lee"}}, Want: []string{"Lee"}},
			{Expr: `values(mail)`, Attrs: map[string][]string{"mail": nil}, Want: []string{}},
		},
	},
	{
		Name:   "hasValue",
		Family: "ldap",
		Sig: []any{
			new(func([]string, string) bool),
			new(func(string, string) bool),
			new(func([]any, string) bool),
		},
		Fn: hasValue,
		Doc: "hasValue reports whether values (a list of strings or a single string) contains v, ignoring " +
			"case by Unicode simple case folding, like LDAP's caseIgnoreMatch for most directory string " +
			"attributes (insignificant spaces are not ignored: use normalizeSpace). hasValue(nil, v) and " +
			"hasValue(values, nil) are false.",
		Examples: []Example{
			{Expr: `hasValue(objectClass, "inetOrgPerson")`, Attrs: map[string][]string{"objectClass": {"top", "person", "InetOrgPerson"}}, Want: true},
			{Expr: `hasValue(objectClass, "groupOfNames")`, Attrs: map[string][]string{"objectClass": {"top", "person"}}, Want: false},
			{Expr: `hasValue(memberOf, "cn=admins,ou=groups,dc=example,dc=com")`, Attrs: map[string][]string{"memberOf": nil}, Want: false},
		},
	},
	{
		Name:   "toBool",
		Family: "ldap",
		Sig:    []any{new(func([]string) bool), new(func(string) bool)},
		Fn:     toBool,
		Doc: "toBool converts an LDAP Boolean (RFC 4517 §3.3.3: \"TRUE\" or \"FALSE\", compared without " +
			"regard to case) to a bool. It accepts a string or a list, whose first value is used; " +
			"toBool(nil) and toBool of an empty list are nil (write toBool(x) ?? false for a default), and " +
			"any other value is an error naming it.",
		Examples: []Example{
			{Expr: `toBool(nsAccountLock)`, Attrs: map[string][]string{"nsAccountLock": {"TRUE"}}, Want: true},
			{Expr: `toBool("false")`, Want: false},
			{Expr: `toBool(nsAccountLock)`, Attrs: map[string][]string{"nsAccountLock": nil}, Want: nil},
			{Expr: `toBool("yes")`, Err: `toBool: not an LDAP Boolean (want TRUE or FALSE): "yes"`},
		},
	},
}

func first(args ...any) (any, error) {
	if err := arity("first", args, 1); err != nil {
		return nil, err
	}
	switch v := args[0].(type) {
	case nil, string:
		return v, nil
	case []string:
		if len(v) == 0 {
			return nil, nil
		}
		return v[0], nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		return v[0], nil
	default:
		return nil, typeErr("first", "", "list or string", v)
	}
}

func values(args ...any) (any, error) {
	out := []string{}
	var seen map[string]struct{} // only for long lists
	add := func(s string) {
		if s == "" {
			return
		}
		if seen != nil {
			if _, dup := seen[s]; dup {
				return
			}
			seen[s] = struct{}{}
		} else {
			for _, o := range out {
				if o == s {
					return
				}
			}
			if len(out) >= 16 {
				seen = make(map[string]struct{}, 2*len(out))
				for _, o := range out {
					seen[o] = struct{}{}
				}
				seen[s] = struct{}{}
			}
		}
		out = append(out, s)
	}
	for i, a := range args {
		switch a := a.(type) {
		case nil:
		case string:
			add(a)
		case []string:
			for _, s := range a {
				add(s)
			}
		case []any:
			for j, item := range a {
				switch item := item.(type) {
				case nil:
				case string:
					add(item)
				default:
					return nil, fmt.Errorf("values: argument %d, item %d: want string, got %s", i+1, j+1, typeName(item))
				}
			}
		default:
			return nil, fmt.Errorf("values: argument %d: want string or list of strings, got %s", i+1, typeName(a))
		}
	}
	return out, nil
}

func hasValue(args ...any) (any, error) {
	if err := arity("hasValue", args, 2); err != nil {
		return nil, err
	}
	v, ok, err := str("hasValue", "v", args[1])
	if err != nil || !ok {
		return false, err
	}
	switch l := args[0].(type) {
	case []string: // the common case, without a closure
		for _, s := range l {
			if strings.EqualFold(s, v) {
				return true, nil
			}
		}
		return false, nil
	}
	found := false
	_, err = list("hasValue", args[0], func(s string) {
		found = found || strings.EqualFold(s, v)
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

func toBool(args ...any) (any, error) {
	if err := arity("toBool", args, 1); err != nil {
		return nil, err
	}
	if b, ok := args[0].(bool); ok {
		return b, nil
	}
	s, ok, err := single("toBool", args[0])
	if !ok {
		return nil, err
	}
	switch {
	case strings.EqualFold(s, "TRUE"):
		return true, nil
	case strings.EqualFold(s, "FALSE"):
		return false, nil
	}
	return nil, fmt.Errorf("toBool: not an LDAP Boolean (want TRUE or FALSE): %q", s)
}
