package scim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// rfcFilters are the example filters of RFC 7644 §3.4.2.2 (Figure 2).
var rfcFilters = []string{
	`userName eq "bjensen"`,
	`name.familyName co "O'Malley"`,
	`userName sw "J"`,
	`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
	`title pr`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`,
	`meta.lastModified ge "2011-05-13T04:42:34Z"`,
	`meta.lastModified lt "2011-05-13T04:42:34Z"`,
	`meta.lastModified le "2011-05-13T04:42:34Z"`,
	`title pr and userType eq "Employee"`,
	`title pr or userType eq "Intern"`,
	`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
	`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
	`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
	`userType eq "Employee" and (emails.type eq "work")`,
	`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
	`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
}

func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{``, `""`},
		{`bjensen`, `"bjensen"`},
		{`O'Malley`, `"O'Malley"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"line\nbreak\r\t", `"line\nbreak\r\t"`},
		{"nul\x00 bell\x07 del\x7f", `"nul\u0000 bell\u0007 del\u007f"`},
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`},
		{"Jürgen 日本 🙂", `"Jürgen 日本 🙂"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{`x" or userName pr or userName eq "y`, `"x\" or userName pr or userName eq \"y"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Quote(tt.in)
			if got != tt.want {
				t.Fatalf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatalf("not a JSON string: %v", err)
			}
			if utf8.ValidString(tt.in) && back != tt.in {
				t.Fatalf("json decodes to %q", back)
			}
			f, err := ParseFilter(`userName eq ` + got)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			if _, ok := f.Expr.(*Compare); !ok {
				t.Fatalf("injection: parsed as %T %s", f.Expr, f)
			}
		})
	}
}

// wantQuoted is s with each byte that is not valid UTF-8 replaced by U+FFFD,
// which is what Quote promises.
func wantQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "bjensen", `a"b`, `a\b`, "x\ny", "\x00", "日本", "\xff", `" or true or "`, `\u0041`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		flt, err := ParseFilter(`userName eq ` + q)
		if err != nil {
			t.Fatalf("ParseFilter(userName eq %s): %v", q, err)
		}
		c, ok := flt.Expr.(*Compare)
		if !ok || c.Op != "eq" || c.Path.Attr != "userName" {
			t.Fatalf("parsed as %T %s", flt.Expr, flt)
		}
		if c.Value != wantQuoted(s) {
			t.Fatalf("value %q, want %q", c.Value, wantQuoted(s))
		}
		var back string
		if err := json.Unmarshal([]byte(q), &back); err != nil || back != wantQuoted(s) {
			t.Fatalf("Quote(%q) = %s is not the JSON string of it (%v)", s, q, err)
		}
	})
}

func TestParseFilterRFCExamples(t *testing.T) {
	for _, in := range rfcFilters {
		t.Run(in, func(t *testing.T) {
			f, err := ParseFilter(in)
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			// String is canonical: it parses back to itself.
			s := f.String()
			g, err := ParseFilter(s)
			if err != nil {
				t.Fatalf("ParseFilter(String()=%q): %v", s, err)
			}
			if g.String() != s {
				t.Fatalf("String not stable: %q then %q", s, g.String())
			}
		})
	}
}

func TestParseFilterTree(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`userName EQ "bjensen"`, `userName eq "bjensen"`},
		{`a eq 1 or b eq 2 and c eq 3`, `a eq 1 or b eq 2 and c eq 3`},
		{`(a eq 1 or b eq 2) and c eq 3`, `(a eq 1 or b eq 2) and c eq 3`},
		{`a eq 1 and (b eq 2 and c eq 3)`, `a eq 1 and (b eq 2 and c eq 3)`},
		{`a eq 1 or (b eq 2 or c eq 3)`, `a eq 1 or (b eq 2 or c eq 3)`},
		{`a eq true and b eq FALSE and c eq Null`, `a eq true and b eq false and c eq null`},
		{`n ge -1.5E3`, `n ge -1500`},
		{`members[value eq "1"]`, `members[value eq "1"]`},
		{`NOT(a pr)`, `not (a pr)`},
		{`members.$ref eq "x"`, `members.$ref eq "x"`},
		{`s eq "\u00e9\ud83d\ude42\/"`, `s eq "é🙂/"`},
		{"s eq \"a\xffb\"", "s eq \"a\ufffdb\""},
		{`s eq "\ud83d"`, "s eq \"\ufffd\""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFilter(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("precedence", func(t *testing.T) {
		f := MustParseFilter(`a pr or b pr and c pr`)
		or, ok := f.Expr.(*Logical)
		if !ok || or.Op != "or" {
			t.Fatalf("root %T", f.Expr)
		}
		if and, ok := or.Right.(*Logical); !ok || and.Op != "and" {
			t.Fatalf("right %T", or.Right)
		}
	})
	t.Run("urn path", func(t *testing.T) {
		f := MustParseFilter(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`)
		c := f.Expr.(*Compare)
		want := AttrPath{URN: URNEnterpriseUser, Attr: "manager", Sub: "value"}
		if c.Path != want {
			t.Fatalf("got %#v", c.Path)
		}
	})
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		msg    string
	}{
		{``, 0, "empty filter"},
		{`userName`, 8, "expected operator"},
		{`userName xx "a"`, 9, `unknown operator "xx"`},
		{`userName eq`, 11, "expected a value"},
		{`userName eq bjensen`, 12, "expected a value"},
		{`userName eq "bjensen`, 12, "unterminated string"},
		{`userName eq 'b'`, 12, "strings must be in double quotes"},
		{`userName eq "a" and`, 19, "expected attribute path"},
		{`userName eq "a" userType eq "b"`, 16, `expected "and", "or" or end of filter`},
		{`(userName eq "a"`, 0, `missing ")"`},
		{`emails[type eq "work"`, 6, `missing "]"`},
		{`emails[type eq "work" and x[y eq 1]]`, 27, "value paths cannot be nested"},
		{`not userName pr`, 4, `expected "(" after "not"`},
		{`userName co 1`, 9, `needs a string value`},
		{`userName gt true`, 9, `needs a string or number value`},
		{`n eq 01`, 5, "invalid number"},
		{`n eq 1.`, 5, "invalid number"},
		{`n eq 1e999`, 5, "number out of range"},
		{`s eq "a` + "\n" + `"`, 7, "control character"},
		{`s eq "\q"`, 6, "invalid escape"},
		{`s eq "\u12"`, 6, `invalid \u escape`},
		{`foo:bar eq 1`, 3, `unexpected ":"`},
		{`name.given.x eq 1`, 10, "sub-attributes nest only one level"},
		{`1abc eq 1`, 0, "invalid number"},
		{`"abc" eq 1`, 0, "expected attribute path"},
		{`emails[primary eq true].value eq "x"`, 23, "unexpected character '.'"},
		{`a eq 1 & b eq 2`, 7, "unexpected character"},
		{`emails.type[value eq "x"]`, 0, "not to sub-attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseFilter(tt.in)
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FilterError", err)
			}
			if fe.Offset != tt.offset || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("got offset %d %q, want offset %d containing %q", fe.Offset, fe.Msg, tt.offset, tt.msg)
			}
		})
	}
}

// bjensen is the RFC 7643 §8.2 full user example, abridged, with the
// enterprise extension of §8.3.
const bjensen = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "701984",
  "userName": "bjensen@example.com",
  "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
  "displayName": "Babs Jensen",
  "title": "Tour Guide",
  "userType": "Employee",
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "ims": [{"value": "someaimhandle", "type": "aim"}],
  "x509Certificates": [],
  "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
           "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""},
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984",
    "costCenter": "4130",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
  },
  "loginCount": 42,
  "nickName": null
}`

func TestFilterMatch(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		// RFC 7644 §3.4.2.2 examples
		{`userName eq "bjensen@example.com"`, true},
		{`userName eq "BJENSEN@example.COM"`, true},
		{`userName eq "bjensen"`, false},
		{`name.familyName co "ens"`, true},
		{`name.familyName co "O'Malley"`, false},
		{`userName sw "B"`, true},
		{`userName ew "EXAMPLE.com"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr`, false},
		{`title pr`, true},
		{`nickName pr`, false},
		{`x509Certificates pr`, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified lt "2011-05-13T04:42:35Z"`, true},
		{`meta.lastModified le "2011-05-13T06:42:34+02:00"`, true},
		{`meta.lastModified gt "2011-05-13T05:42:34+02:00"`, true},
		{`title pr and userType eq "Employee"`, true},
		{`title pr and userType eq "Intern"`, false},
		{`title pr or userType eq "Intern"`, true},
		{`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, true},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, true},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, false},
		{`userType eq "Employee" and (emails.type eq "work")`, true},
		{`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`, true},
		{`ims[type eq "xmpp"]`, false},
		// types, null, ne, case-insensitive names
		{`USERNAME EQ "bjensen@example.com"`, true},
		{`active eq true`, true},
		{`active eq "true"`, false},
		{`active ne false`, true},
		{`loginCount gt 41`, true},
		{`loginCount le 41.5`, false},
		{`loginCount eq "42"`, false},
		{`nickName eq null`, true},
		{`profileUrl eq null`, true},
		{`title eq null`, false},
		{`title ne null`, true},
		{`profileUrl ne "x"`, true},
		{`emails.type ne "work"`, false},
		{`emails.type ne "other"`, true},
		{`emails.primary eq true`, true},
		{`name.givenName gt "A" and name.givenName lt "c"`, true},
		// extension attributes
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName eq "john smith"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
		{`urn:acme:unknown:User:employeeNumber pr`, false},
		{`employeeNumber pr`, false},
		{`schemas[value sw "urn:ietf:params:scim:schemas:extension"]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match([]byte(bjensen)); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("zero filter", func(t *testing.T) {
		if !(Filter{}).Match([]byte(bjensen)) {
			t.Fatal("zero Filter must match")
		}
	})
}

func TestFilterMatchCaseExact(t *testing.T) {
	doc := []byte(`{"schemas":["` + URNUser + `"],"id":"AbC","userName":"Bjensen","emails":[{"value":"B@x.org"}],
		"` + URNEnterpriseUser + `":{"employeeNumber":"E1"}}`)
	exact := func(path string) bool {
		return path == "id" || path == "emails.value" || path == URNEnterpriseUser+":employeeNumber"
	}
	tests := []struct {
		filter    string
		insens    bool
		withExact bool
	}{
		{`id eq "abc"`, true, false},
		{`id eq "AbC"`, true, true},
		{`userName eq "bjensen"`, true, true},
		{`emails.value eq "b@x.org"`, true, false},
		{`emails[value eq "b@x.org"]`, true, false},
		{`emails co "b@"`, true, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "e1"`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f := MustParseFilter(tt.filter)
			if got := f.Match(doc); got != tt.insens {
				t.Errorf("Match = %v, want %v", got, tt.insens)
			}
			if got := f.MatchWith(doc, MatchOptions{CaseExact: exact}); got != tt.withExact {
				t.Errorf("MatchWith = %v, want %v", got, tt.withExact)
			}
		})
	}
	t.Run("SchemaCaseExact", func(t *testing.T) {
		ce := SchemaCaseExact(Builtin(URNUser), Builtin(URNEnterpriseUser))
		for path, want := range map[string]bool{
			"userName": false, "userName.x": false, "emails.value": false, "nope": false, "id": true, "externalId": true,
			URNEnterpriseUser + ":employeeNumber": false,
		} {
			if got := ce(path); got != want {
				t.Errorf("%s: got %v", path, got)
			}
		}
		custom, err := ParseSchema([]byte(`{"id":"urn:acme:X","attributes":[{"name":"code","caseExact":true},
			{"name":"tags","type":"complex","multiValued":true,"subAttributes":[{"name":"value","caseExact":true}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		ce = SchemaCaseExact(custom)
		if !ce("code") || !ce("CODE") || !ce("tags.value") || ce("tags") {
			t.Error("custom caseExact not honored")
		}
		doc := []byte(`{"code":"Ab","tags":[{"value":"Q"}]}`)
		if MustParseFilter(`code eq "ab"`).MatchWith(doc, MatchOptions{CaseExact: ce}) {
			t.Error("caseExact code matched case-insensitively")
		}
		if !MustParseFilter(`tags[value eq "Q"]`).MatchWith(doc, MatchOptions{CaseExact: ce}) {
			t.Error("exact tag did not match")
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range rfcFilters {
		f.Add(s)
	}
	f.Add(`a eq 1 or (b eq 2 or c eq 3) and not (d pr)`)
	f.Add(`s eq "\u00e9\"" and n lt -1.5e3`)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > len(s) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		text := flt.String()
		again, err := ParseFilter(text)
		if err != nil {
			t.Fatalf("String() = %q does not parse: %v", text, err)
		}
		if again.String() != text {
			t.Fatalf("String not stable: %q then %q", text, again.String())
		}
		flt.Match([]byte(bjensen))
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`userName`, `emails[type eq "work"].value`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
		`urn:a:b:c[x eq 1 and y eq "q"].z`, `"name.givenName"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s, knownURNs)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		back, err := ParsePath(p.String(), knownURNs)
		if err != nil {
			t.Fatalf("String() = %q does not parse: %v", p.String(), err)
		}
		if back.String() != p.String() {
			t.Fatalf("String not stable: %q then %q", p.String(), back.String())
		}
	})
}
