package builtins

import (
	"unicode/utf8"
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
	return string(appendJSONString(make([]byte, 0, len(s)+2), s)), nil
}

// appendJSONString appends s as a JSON string (RFC 8259 §7) without
// encoding/json's HTML escaping of <, > and &, which SCIM does not need.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
