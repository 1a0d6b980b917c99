package builtins

import (
	"github.com/scimsync/scimsync/engine/jsonw"
)

var scimFuncs = []*Func{
	{
		Name:   "scimQuote",
		Family: "scim",
		Sig:    []any{new(func(string) string)},
		Fn:     scimQuote,
		Doc: "scimQuote returns s as a SCIM filter string literal (RFC 7644 §3.4.2.2), which is a JSON " +
			"string: it is wrapped in double quotes, and \", \\ and control characters are escaped, so " +
			"that an LDAP value cannot end the literal and inject filter syntax: 'userName eq ' + " +
			"scimQuote(first(uid)). Invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029 are escaped too. " +
			"scimQuote(nil) is nil.",
		Examples: []Example{
			{Expr: `"userName eq " + scimQuote(first(uid))`, Attrs: map[string][]string{"uid": {"ann"}}, Want: `userName eq "ann"`},
			{Expr: `scimQuote(first(cn))`, Attrs: map[string][]string{"cn": {`Ann "the \ admin" Lee` + "\n"}}, Want: `"Ann \"the \\ admin\" Lee\n"`},
			{Expr: `scimQuote("x\" or userName pr or \"")`, Want: `"x\" or userName pr or \""`},
			{Expr: `scimQuote(first(uid))`, Attrs: map[string][]string{"uid": nil}, Want: nil},
		},
	},
}

func scimQuote(args ...any) (any, error) {
	if err := arity("scimQuote", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := str("scimQuote", "", args[0])
	if !ok {
		return nil, err
	}
	return jsonw.String(s), nil
}
