package builtins

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// testEnv is the environment of the edge-case tests.
var testEnv = map[string]any{
	"dn":          "uid=ann,ou=People,dc=example,dc=com",
	"mail":        []string{"Ann@Example.COM"},
	"empty":       []string(nil),
	"num":         42,
	"memberOf":    []string{"cn=admins,ou=groups,dc=example,dc=com", "CN=Staff,OU=Groups,DC=example,DC=com"},
	"objectClass": []string{"top", "person", "inetOrgPerson"},
}

const anyNil = `parseJSON("{}").missing`

// TestCases holds edge cases as expressions that must be true, or that must
// fail with an error containing err (the cel-go ext test style).
//
// anyNil stands for a value of unknown type that is nil at run time, such
// as a missing JSON field. (A variable holding nil in a map environment does
// not do: expr's checker treats it like the literal nil.)
func TestCases(t *testing.T) {
	tests := []struct {
		expr string
		err  string
	}{
		// strings
		{expr: `lower(anyNil) == nil`},
		{expr: `upper("ǆ") == "Ǆ" && titleCase("ǆemal") == "ǅemal"`},
		{expr: `titleCase("o'neil mcdonald") == "O'neil Mcdonald"`},
		{expr: `titleCase("ANN  LEE-SMITH") == "Ann  Lee-Smith"`},
		{expr: `normalizeSpace("") == "" && normalizeSpace(" \t ") == ""`},
		{expr: `normalizeSpace("a\tb") == "a b" && normalizeSpace("a b") == "a b"`},
		{expr: `trim("\u3000x\u3000") == "x"`},
		{expr: `join(["a", nil, "", "b"], "-") == "a--b"`},
		{expr: `join(map(mail, lower(#)), ",") == "ann@example.com"`},
		{expr: `join([], ",") == nil && join([nil], ",") == nil && join(empty, ",") == nil`},
		{expr: `join(["a", 1], ",")`, err: "join: want list of strings, got an item of type int"},
		{expr: `join(anyNil, ",") == nil`},
		{expr: `split("", ",") == []`},
		{expr: `split("ab", "") == ["a", "b"]`},
		{expr: `replace("aaa", "a", "b") == "bbb"`},
		{expr: `replace(anyNil, "a", anyNil)`, err: "replace: new: want string, got nil"},
		{expr: `!regexMatch("abc", "B") && regexMatch("abc", "(?i)B")`},
		{expr: `regexMatch("abc", first(empty) ?? "(")`, err: "regexMatch: invalid pattern"},
		{expr: `regexReplace("a1b22", "[0-9]+", "<$0>") == "a<1>b<22>"`},
		{expr: `regexReplace("ann lee", "(?P<first>\\w+) (?P<last>\\w+)", "${last}, ${first}") == "lee, ann"`},
		{expr: `regexReplace("x", "x", "$$") == "$"`},
		{expr: `lower(num)`, err: "cannot use int as argument (type string) to call lower"},
		{expr: `lower(parseJSON("1"))`, err: "lower: want string, got float"},

		// ldap
		{expr: `first(anyNil) == nil && first(nil) == nil`},
		{expr: `first([]) == nil && first([1, 2]) == 1`},
		{expr: `first(1)`, err: "first: want list or string, got int"},
		// An argument of unknown type matches the first overload, ([]string) string.
		{expr: `first(parseJSON("[1]")) + 1`, err: "mismatched types string and int"},
		{expr: `parseJSON("[1]")[0] + 1 == 2`},
		{expr: `values() == [] && values(nil, "") == []`},
		{expr: `values(mail, mail, "x", ["x", nil, "y"]) == ["Ann@Example.COM", "x", "y"]`},
		{expr: `values(split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,a,b,u", ",")) == split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u", ",")`},
		{expr: `values(mail, 3)`, err: "values: argument 2: want string or list of strings, got int"},
		{expr: `values(["a", true])`, err: "values: argument 1, item 2: want string, got bool"},
		{expr: `hasValue(["STRASSE"], "strasse") && hasValue("Σίσυφος", "ΣΊΣΥΦΟΣ") && hasValue(["a", nil, "B"], "b")`},
		{expr: `!hasValue(objectClass, first(empty))`},
		{expr: `hasValue(objectClass, "PERSON")`},
		{expr: `toBool(values("false", "true")) == false && toBool("True")`},
		{expr: `toBool(parseJSON("true"))`},
		{expr: `toBool(" TRUE")`, err: `toBool: not an LDAP Boolean (want TRUE or FALSE): " TRUE"`},

		// dn
		{expr: `rdnValue("cn=a\\2Cb,dc=x") == "a,b" && rdnValue("cn=#04024869,dc=x") == "Hi"`},
		{expr: `rdnValue("") == nil && rdnType("") == nil && len(parseDN("")) == 0`},
		{expr: `rdnValue("foo")`, err: "rdnValue: invalid DN \"foo\""},
		{expr: `rdnType("cn=a+uid=b,dc=x") == "cn"`},
		{expr: `parentDN("cn=a\\,b;ou=x,dc=y") == "ou=x,dc=y"`},
		{expr: `parentDN("cn=a\\\\,ou=x") == "ou=x"`},
		{expr: `parentDN("") == ""`},
		{expr: `isUnder(dn, "") && isUnder("", "")`},
		{expr: `!isUnder("dc=com", "dc=example,dc=com")`},
		{expr: `any(memberOf, isUnder(#, "ou=Groups,dc=example,dc=com"))`},
		{expr: `isUnder(dn, first(empty) ?? "x")`, err: `isUnder: invalid DN "x"`},
		{expr: `isUnder(dn, anyNil)`, err: "isUnder: base: want string, got nil"},
		{expr: `dnEqual("cn=a,dc=x", "cn=b,dc=x") == false && dnEqual(anyNil, anyNil) == false`},
		{expr: `dnEqual("cn=a", "bad")`, err: `dnEqual: invalid DN "bad"`},

		// time
		{expr: `generalizedToRFC3339("202401312359Z") == "2024-01-31T23:59:00Z"`},
		{expr: `generalizedToRFC3339("20240131235959,25Z") == "2024-01-31T23:59:59.25Z"`},
		{expr: `generalizedToRFC3339("2024013123.5Z") == "2024-01-31T23:30:00Z"`},
		{expr: `generalizedToRFC3339("202401312359.5Z") == "2024-01-31T23:59:30Z"`},
		{expr: `generalizedToRFC3339("20240131235959-0130") == "2024-02-01T01:29:59Z"`},
		{expr: `generalizedToRFC3339("20240131235959+05") == "2024-01-31T18:59:59Z"`},
		{expr: `generalizedToRFC3339("20161231235960Z") == "2017-01-01T00:00:00Z"`},
		{expr: `generalizedToRFC3339("20240131235959.123456789Z") == "2024-01-31T23:59:59.123456789Z"`},
		{expr: `generalizedToRFC3339("20240131235959")`, err: "missing time zone"},
		{expr: `generalizedToRFC3339("20230229000000Z")`, err: "day 29 out of range"},
		{expr: `generalizedToRFC3339("20240131246000Z")`, err: "hour 24 out of range"},
		{expr: `generalizedToRFC3339("2024013123595Z")`, err: "missing second"},
		{expr: `generalizedToRFC3339("20240131235959.Z")`, err: "empty fraction"},
		{expr: `generalizedToRFC3339("20240131235959+2")`, err: "missing zone hour"},
		{expr: `generalizedToRFC3339("20240131235959Zx")`, err: "unexpected"},
		{expr: `rfc3339ToGeneralized(generalizedToRFC3339("20240131235959.5Z")) == "20240131235959.5Z"`},
		{expr: `rfc3339ToGeneralized(values("2024-01-31T23:59:59.000Z")) == "20240131235959Z"`},
		{expr: `rfc3339ToGeneralized("2024-01-31")`, err: "rfc3339ToGeneralized: invalid RFC 3339 timestamp"},
		{expr: `filetimeToRFC3339("116444736000000000") == "1970-01-01T00:00:00Z"`},
		{expr: `filetimeToRFC3339("1") == "1601-01-01T00:00:00.0000001Z"`},
		{expr: `filetimeToRFC3339("2650467743999999999") == "9999-12-31T23:59:59.9999999Z"`},
		{expr: `filetimeToRFC3339("2650467744000000000")`, err: "after year 9999"},
		{expr: `filetimeToRFC3339("-1")`, err: "non-negative decimal integer"},
		{expr: `filetimeToRFC3339("never")`, err: `invalid FILETIME "never"`},

		// ad
		{expr: `uacFlags("4") == ["0x00000004"]`},
		{expr: `uacFlags("-2147483648") == ["0x80000000"] && uacDisabled("-2")`},
		{expr: `uacFlags("4294967296")`, err: "want a 32-bit decimal integer"},
		{expr: `uacFlags("512") == ["NORMAL_ACCOUNT"] && !uacDisabled("512")`},
		{expr: `sidToString(b"\x01\x00\x01\x00\x00\x00\x00\x00") == "S-1-0x010000000000"`},
		{expr: `sidToString(b"\x02\x00\x00\x00\x00\x00\x00\x05")`, err: "revision 2"},
		{expr: `guidToString("\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb\xcc\xdd\xee\xff")`, err: "want 16 bytes, got 24"},

		// scim
		{expr: `scimQuote("\u0001<&>") == "\"\\u0001<&>\""`},
		{expr: `scimQuote("a\u2028b") == "\"a\\u2028b\""`},
		{expr: `scimQuote("\t\r\b\f") == "\"\\t\\r\\b\\f\""`},
		{expr: `scimQuote("") == "\"\""`},

		// json
		{expr: `parseJSON("null") == nil`},
		{expr: `parseJSON(values("{\"a\": {\"b\": [1]}}")).a.b[0] == 1`},
		{expr: `parseJSON("{} x")`, err: "parseJSON: invalid JSON: invalid character 'x' after top-level value"},

		// expr builtins stay available; now() does not
		{expr: `len(mail) == 1 && hasPrefix(first(mail), "Ann") && len(filter(objectClass, # != "top")) == 2`},
		{expr: `now()`, err: "unknown name now"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := eval(strings.ReplaceAll(tt.expr, "anyNil", anyNil), testEnv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %s, %v; want error containing %q", formatValue(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != true {
				t.Fatalf("got %s, want true", formatValue(got))
			}
		})
	}
}

// TestOverrides checks that our functions replace expr's builtins of the
// same name: each expression gives a different result, or an error, with
// expr's builtin.
func TestOverrides(t *testing.T) {
	tests := []struct {
		expr string
		want any
	}{
		{`lower(first(empty))`, nil}, // expr's lower panics on nil
		{`lower(anyNil)`, nil},
		{`first(nil)`, nil},          // expr's first(nil) is nil too, but...
		{`first(dn)`, testEnv["dn"]}, // ...expr's first rejects a string
		{`values(mail, dn)`, []string{"Ann@Example.COM", testEnv["dn"].(string)}}, // expr's values wants a map
		{`join(["a", nil], "-")`, "a"},                                            // expr's join rejects nil items
		{`split("", ",")`, []string{}},                                            // expr's split gives [""]
		{`trim("\u00a0x")`, "x"},                                                  // expr's trim is strings.TrimSpace too; no cutset in ours
		{`upper(anyNil)`, nil},
		{`replace(anyNil, "a", "b")`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := eval(strings.ReplaceAll(tt.expr, "anyNil", anyNil), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(tt.want)) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	// The documented rough edge: a literal nil is rejected for a string
	// parameter by expr's checker, before any function runs.
	_, err := eval(`lower(nil)`, testEnv)
	if err == nil || !strings.Contains(err.Error(), "cannot use nil as argument (type string) to call lower") {
		t.Errorf("lower(nil): got %v, want a compile error", err)
	}
	// expr's own builtin, for contrast: without our options, lower(nil from
	// first) is a run-time error.
	prog, err := expr.Compile(`lower(first(empty))`, expr.Env(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expr.Run(prog, testEnv); err == nil {
		t.Error("expr's builtin lower accepted nil; TestOverrides no longer proves anything")
	}
}

func TestCheckConstArgs(t *testing.T) {
	tests := []struct {
		expr    string
		err     string
		column  int // 0-based rune offset of the offending literal
		noCheck bool
	}{
		{expr: `regexMatch(first(mail), "a(")`, err: "regexMatch: invalid pattern: error parsing regexp: missing closing ): `a(`", column: 24},
		{expr: `mail | first() | regexReplace("[", "")`, err: "regexReplace: invalid pattern", column: 30},
		{expr: `"é" + lower(first(mail)) + string(isUnder(dn, "dc=x,"))`, err: `isUnder: invalid DN "dc=x,"`, column: 46},
		{expr: `regexMatch(first(mail), "a(" + "")`, err: "regexMatch: invalid pattern", column: 24, noCheck: true},
		{expr: `regexMatch(first(mail), first(empty) ?? "(")`},
		{expr: `regexMatch(first(mail), "^a")`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			prog, err := expr.Compile(tt.expr, append([]expr.Option{expr.Env(testEnv)}, Options()...)...)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckConstArgs(prog.Node())
			if tt.noCheck {
				// A constant expression is folded by expr's optimizer only
				// sometimes; accept either outcome, but never a panic.
				return
			}
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ferr *file.Error
			if !errors.As(err, &ferr) {
				t.Fatalf("got %v (%T), want a *file.Error", err, err)
			}
			if !strings.Contains(ferr.Message, tt.err) {
				t.Errorf("message %q, want it to contain %q", ferr.Message, tt.err)
			}
			if ferr.From != tt.column {
				t.Errorf("From = %d, want %d", ferr.From, tt.column)
			}
		})
	}
}

func TestCacheBound(t *testing.T) {
	builds := 0
	c := &cache[string]{max: 2, build: func(s string) (string, error) {
		builds++
		if s == "bad" {
			return "", errors.New("bad")
		}
		return s + "!", nil
	}}
	for _, k := range []string{"a", "b", "c", "a", "b", "c", "bad", "bad"} {
		v, err := c.get(k)
		if k == "bad" {
			if err == nil {
				t.Error("no error for bad")
			}
			continue
		}
		if v != k+"!" || err != nil {
			t.Errorf("get(%q) = %q, %v", k, v, err)
		}
	}
	if n := c.n.Load(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	// a and b are cached; c is rebuilt, bad is never cached.
	if builds != 6 {
		t.Errorf("%d builds, want 6", builds)
	}
}

// TestConcurrent runs one compiled program from many goroutines, each with
// its own VM, as pipe workers do (run with -race).
func TestConcurrent(t *testing.T) {
	prog, err := compile(`regexReplace(lower(first(mail)), "@.*", "") + string(isUnder(dn, "dc=example,dc=com")) + join(values(memberOf), ";")`, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want, err := expr.Run(prog, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			var m vm.VM
			env := map[string]any{}
			for k, v := range testEnv {
				env[k] = v
			}
			for i := range 50 {
				dyn := fmt.Sprintf("x%d-%d", g, i) // fills the regexp cache
				if _, err := regexMatch(dyn, dyn); err != nil {
					errs <- err
					return
				}
				got, err := m.Run(prog, env)
				if err != nil || got != want {
					errs <- fmt.Errorf("got %v, %v; want %v", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
