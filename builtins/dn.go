package builtins

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

var dnFuncs = []*Func{
	{
		Name:   "parseDN",
		Family: "dn",
		Sig:    []any{new(func(string) []map[string]any)},
		Fn:     parseDN,
		Doc: "parseDN splits a distinguished name (RFC 4514) into its RDNs, leftmost first, each a map " +
			"with \"type\" (the attribute type as written) and \"value\" (unescaped). A multi-valued RDN " +
			"such as cn=Ann+uid=ann gives the type and value of its first attribute, plus \"more\": a list " +
			"of {type, value} maps for the others; single-valued RDNs have no \"more\" key. An invalid DN is " +
			"an error; parseDN(nil) is an empty list, and so is parseDN(\"\"), the root DN.",
		Examples: []Example{
			{Expr: `parseDN(dn)`, DN: `cn=Lee\, Ann,ou=People,dc=example`, Want: []any{
				map[string]any{"type": "cn", "value": "Lee, Ann"},
				map[string]any{"type": "ou", "value": "People"},
				map[string]any{"type": "dc", "value": "example"},
			}},
			{Expr: `parseDN("cn=Ann+uid=ann,dc=example")`, Want: []any{
				map[string]any{"type": "cn", "value": "Ann", "more": []any{map[string]any{"type": "uid", "value": "ann"}}},
				map[string]any{"type": "dc", "value": "example"},
			}},
			{Expr: `parseDN(first(manager))`, Attrs: map[string][]string{"manager": nil}, Want: []any{}},
			{Expr: `parseDN("not a dn")`, Err: "parseDN: invalid DN \"not a dn\": DN ended with incomplete type, value pair"},
		},
	},
	{
		Name:   "rdnValue",
		Family: "dn",
		Sig:    []any{new(func(string) string)},
		Fn:     rdnValue,
		Doc: "rdnValue returns the unescaped value of the first attribute of a DN's first (leftmost) RDN, " +
			"typically the uid or cn that names the entry. rdnValue(nil) is nil, and so is the value of the " +
			"root DN \"\"; an invalid DN is an error.",
		Examples: []Example{
			{Expr: `rdnValue(dn)`, DN: `cn=Lee\, Ann,ou=People,dc=example`, Want: "Lee, Ann"},
			{Expr: `map(memberOf, rdnValue(#))`, Attrs: map[string][]string{"memberOf": {"cn=admins,ou=groups,dc=example", "cn=staff,ou=groups,dc=example"}}, Want: []string{"admins", "staff"}},
			{Expr: `rdnValue(first(manager))`, Attrs: map[string][]string{"manager": nil}, Want: nil},
		},
	},
	{
		Name:   "rdnType",
		Family: "dn",
		Sig:    []any{new(func(string) string)},
		Fn:     rdnType,
		Doc: "rdnType returns the attribute type of a DN's first RDN as written (its first attribute for a " +
			"multi-valued RDN), such as \"uid\" or \"CN\". rdnType(nil) and rdnType(\"\") are nil; an " +
			"invalid DN is an error.",
		Examples: []Example{
			{Expr: `rdnType(dn)`, DN: "uid=ann,ou=people,dc=example", Want: "uid"},
			{Expr: `lower(rdnType("CN=Ann,DC=example"))`, Want: "cn"},
			{Expr: `rdnType(first(manager))`, Attrs: map[string][]string{"manager": nil}, Want: nil},
		},
	},
	{
		Name:   "parentDN",
		Family: "dn",
		Sig:    []any{new(func(string) string)},
		Fn:     parentDN,
		Doc: "parentDN returns the DN of the entry above dn: dn without its first RDN, spelled and escaped " +
			"as in dn. The parent of a one-RDN DN is the root DN \"\", and so is the parent of \"\". " +
			"parentDN(nil) is nil; an invalid DN is an error.",
		Examples: []Example{
			{Expr: `parentDN(dn)`, DN: `cn=Lee\, Ann,OU=People, dc=example`, Want: "OU=People, dc=example"},
			{Expr: `parentDN("dc=com")`, Want: ""},
			{Expr: `parentDN(first(manager))`, Attrs: map[string][]string{"manager": nil}, Want: nil},
		},
	},
	{
		Name:      "isUnder",
		Family:    "dn",
		Sig:       []any{new(func(string, string) bool)},
		Fn:        isUnder,
		ConstArgs: map[int]func(string) error{1: validDN},
		Doc: "isUnder reports whether dn is base or an entry below it, comparing RDNs with go-ldap's " +
			"AncestorOfFold and EqualFold: attribute types and values ignore case, escaping and spaces " +
			"around separators are normalized, and the order inside a multi-valued RDN does not matter. " +
			"Every DN is under the root DN \"\". isUnder(nil, base) is false; an invalid DN is an error, and " +
			"a literal base is checked when the script is loaded.",
		Examples: []Example{
			{Expr: `isUnder(dn, "ou=People,dc=example,dc=com")`, DN: "uid=ann,ou=people,DC=Example,dc=com", Want: true},
			{Expr: `isUnder(dn, "ou=People,dc=example,dc=com")`, DN: "ou=people,dc=example,dc=com", Want: true},
			{Expr: `isUnder(first(manager), "dc=example,dc=com")`, Attrs: map[string][]string{"manager": nil}, Want: false},
			{Expr: `isUnder(dn, "ou=People,dc=example,")`, DN: "uid=ann,ou=people,dc=example", Err: "isUnder: invalid DN \"ou=People,dc=example,\""},
		},
	},
	{
		Name:   "dnEqual",
		Family: "dn",
		Sig:    []any{new(func(string, string) bool)},
		Fn:     dnEqual,
		Doc: "dnEqual reports whether two DNs name the same entry, comparing them with go-ldap's " +
			"EqualFold: attribute types and values ignore case, escaping and spaces around separators are " +
			"normalized, and the order inside a multi-valued RDN does not matter. dnEqual is false if " +
			"either DN is nil; an invalid DN is an error.",
		Examples: []Example{
			{Expr: `dnEqual(dn, "UID=Ann, OU=People, DC=example")`, DN: "uid=ann,ou=people,dc=example", Want: true},
			{Expr: `dnEqual("cn=a+uid=b,dc=x", "uid=b+cn=a,dc=x")`, Want: true},
			{Expr: `dnEqual(first(manager), first(secretary))`, Attrs: map[string][]string{"manager": {"uid=bob,dc=example"}, "secretary": nil}, Want: false},
		},
	},
}

// bases caches parsed DNs passed as isUnder's base, which is usually a
// literal. A parsed DN is only read, so sharing it is safe.
var bases = &cache[*ldap.DN]{max: cacheSize, build: ldap.ParseDN}

func validDN(s string) error {
	if _, err := bases.get(s); err != nil {
		return fmt.Errorf("invalid DN %q: %w", s, err)
	}
	return nil
}

// dnArg parses the DN in v. ok is false when v is nil.
func dnArg(fn, arg string, v any) (dn *ldap.DN, ok bool, err error) {
	s, ok, err := str(fn, arg, v)
	if !ok {
		return nil, false, err
	}
	dn, err = ldap.ParseDN(s)
	if err != nil {
		return nil, false, fmt.Errorf("%s: invalid DN %q: %w", fn, s, err)
	}
	return dn, true, nil
}

func parseDN(args ...any) (any, error) {
	if err := arity("parseDN", args, 1); err != nil {
		return nil, err
	}
	dn, ok, err := dnArg("parseDN", "", args[0])
	if !ok {
		if err != nil {
			return nil, err
		}
		return []map[string]any{}, nil
	}
	out := make([]map[string]any, len(dn.RDNs))
	for i, rdn := range dn.RDNs {
		a := rdn.Attributes[0]
		m := map[string]any{"type": a.Type, "value": a.Value}
		if len(rdn.Attributes) > 1 {
			more := make([]any, len(rdn.Attributes)-1)
			for j, a := range rdn.Attributes[1:] {
				more[j] = map[string]any{"type": a.Type, "value": a.Value}
			}
			m["more"] = more
		}
		out[i] = m
	}
	return out, nil
}

func rdnValue(args ...any) (any, error) {
	if err := arity("rdnValue", args, 1); err != nil {
		return nil, err
	}
	dn, ok, err := dnArg("rdnValue", "", args[0])
	if !ok || len(dn.RDNs) == 0 {
		return nil, err
	}
	return dn.RDNs[0].Attributes[0].Value, nil
}

func rdnType(args ...any) (any, error) {
	if err := arity("rdnType", args, 1); err != nil {
		return nil, err
	}
	dn, ok, err := dnArg("rdnType", "", args[0])
	if !ok || len(dn.RDNs) == 0 {
		return nil, err
	}
	return dn.RDNs[0].Attributes[0].Type, nil
}

func parentDN(args ...any) (any, error) {
	if err := arity("parentDN", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := str("parentDN", "", args[0])
	if !ok {
		return nil, err
	}
	if _, err := ldap.ParseDN(s); err != nil {
		return nil, fmt.Errorf("parentDN: invalid DN %q: %w", s, err)
	}
	// ParseDN accepted s, so the first unescaped ',' or ';' ends the first
	// RDN. Slicing keeps the caller's spelling, which DN.String would
	// normalize.
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ',', ';':
			return strings.TrimLeft(s[i+1:], " "), nil
		}
	}
	return "", nil
}

func isUnder(args ...any) (any, error) {
	if err := arity("isUnder", args, 2); err != nil {
		return nil, err
	}
	dn, ok, err := dnArg("isUnder", "", args[0])
	if err != nil {
		return false, err
	}
	b, err := reqStr("isUnder", "base", args[1])
	if err != nil {
		return false, err
	}
	base, err := bases.get(b)
	if err != nil {
		return false, fmt.Errorf("isUnder: invalid DN %q: %w", b, err)
	}
	if !ok {
		return false, nil
	}
	return base.EqualFold(dn) || base.AncestorOfFold(dn), nil
}

func dnEqual(args ...any) (any, error) {
	if err := arity("dnEqual", args, 2); err != nil {
		return nil, err
	}
	a, okA, err := dnArg("dnEqual", "", args[0])
	if err != nil {
		return false, err
	}
	b, okB, err := dnArg("dnEqual", "b", args[1])
	if err != nil {
		return false, err
	}
	return okA && okB && a.EqualFold(b), nil
}
