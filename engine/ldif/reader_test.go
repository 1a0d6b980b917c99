package ldif

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// item is one result of Next: a record or a syntax error. For errors only
// Line, Column and a substring of Msg are compared.
type item struct {
	Rec *Record
	Err *Error
}

func rec(r Record) item { return item{Rec: &r} }

func fail(line, col int, msg string) item {
	return item{Err: &Error{Line: line, Column: col, Msg: msg}}
}

type readerCase struct {
	name    string
	in      string
	want    []item
	version int
}

// readerCases is shared with FuzzReader as its seed corpus.
var readerCases = []readerCase{
	// Content records.
	{
		name: "minimal",
		in:   "dn: cn=a,dc=example,dc=com\ncn: a\n",
		want: []item{rec(Record{Line: 1, DN: "cn=a,dc=example,dc=com", Attrs: []Attr{{"cn", []string{"a"}}}})},
	},
	{
		name: "empty input",
		in:   "",
	},
	{
		name: "only comments and blank lines",
		in:   "\n# nothing here\n\n\n",
	},
	{
		name:    "version then blank line",
		in:      "version: 1\n\ndn: dc=x\ndc: x\n",
		version: 1,
		want:    []item{rec(Record{Line: 3, DN: "dc=x", Attrs: []Attr{{"dc", []string{"x"}}}})},
	},
	{
		name:    "version directly followed by dn, after a comment",
		in:      "# export\nVersion: 1\ndn: dc=x\ndc: x\n",
		version: 1,
		want:    []item{rec(Record{Line: 3, DN: "dc=x", Attrs: []Attr{{"dc", []string{"x"}}}})},
	},
	{
		name: "version is an attribute inside a record",
		in:   "dn: dc=x\nversion: 2\n",
		want: []item{rec(Record{Line: 1, DN: "dc=x", Attrs: []Attr{{"version", []string{"2"}}}})},
	},
	{
		name: "comments and folded comments",
		in: "# leading comment\n# folded comment\n continues here\ndn: dc=x\n# inside\ncn: a\n#folded\n cn: not-an-attr\n" +
			"sn: b\n",
		want: []item{rec(Record{Line: 4, DN: "dc=x", Attrs: []Attr{{"cn", []string{"a"}}, {"sn", []string{"b"}}}})},
	},
	{
		name: "folding LF",
		in:   "dn: cn=Barbara Jens\n en,dc=x\ndescription: first \n second\n  third\n",
		want: []item{rec(Record{Line: 1, DN: "cn=Barbara Jensen,dc=x", Attrs: []Attr{{"description", []string{"first second third"}}}})},
	},
	{
		name: "folding CRLF",
		in:   "dn: cn=a,\r\n dc=x\r\ncn: a\r\n b\r\n\r\ndn: cn=c,dc=x\r\ncn: c\r\n",
		want: []item{
			rec(Record{Line: 1, DN: "cn=a,dc=x", Attrs: []Attr{{"cn", []string{"ab"}}}}),
			rec(Record{Line: 6, DN: "cn=c,dc=x", Attrs: []Attr{{"cn", []string{"c"}}}}),
		},
	},
	{
		name: "folded attribute name and base64",
		in:   "dn: dc=x\ndescr\n iption:: Sm9zw6k\n gTcO8bGxlcg==\n",
		want: []item{rec(Record{Line: 1, DN: "dc=x", Attrs: []Attr{{"description", []string{"José Müller"}}}})},
	},
	{
		name: "base64 values",
		in:   "dn: dc=x\ncn:: Sm9zw6kgTcO8bGxlcg==\nbin:: AAEC/w==\nempty::\nspaced::   QUJD  \nraw:: QUI\n",
		want: []item{rec(Record{Line: 1, DN: "dc=x", Attrs: []Attr{
			{"cn", []string{"José Müller"}},
			{"bin", []string{"\x00\x01\x02\xff"}},
			{"empty", []string{""}},
			{"spaced", []string{"ABC"}},
			{"raw", []string{"AB"}},
		}})},
	},
	{
		name: "plain values keep colons, inner and trailing spaces",
		in:   "dn: dc=x\ndescription: a: b::c <d>\nempty:\nspacey:   x  y \n",
		want: []item{rec(Record{Line: 1, DN: "dc=x", Attrs: []Attr{
			{"description", []string{"a: b::c <d>"}},
			{"empty", []string{""}},
			{"spacey", []string{"x  y "}},
		}})},
	},
	{
		name: "attribute options and OIDs",
		in:   "dn: dc=x\ncn: Rose\ncn;lang-en: Rose\ncn;lang-fr: Rose\nCN;LANG-EN: Rosie\n2.5.4.3: oid\nuserCertificate;binary:: AA==\nms-DS_x: 1\n",
		want: []item{rec(Record{Line: 1, DN: "dc=x", Attrs: []Attr{
			{"cn", []string{"Rose"}},
			{"cn;lang-en", []string{"Rose", "Rosie"}},
			{"cn;lang-fr", []string{"Rose"}},
			{"2.5.4.3", []string{"oid"}},
			{"userCertificate;binary", []string{"\x00"}},
			{"ms-DS_x", []string{"1"}},
		}})},
	},
	{
		name: "same-name lines merged, first spelling kept",
		in:   "dn: uid=a,dc=x\nobjectClass: top\ncn: a\nobjectclass: person\nOBJECTCLASS: inetOrgPerson\ncn: b\n",
		want: []item{rec(Record{Line: 1, DN: "uid=a,dc=x", Attrs: []Attr{
			{"objectClass", []string{"top", "person", "inetOrgPerson"}},
			{"cn", []string{"a", "b"}},
		}})},
	},
	{
		name: "several records, multiple blank lines, no trailing newline",
		in:   "\n\ndn: a\ncn: a\n\n\n\ndn: b\ncn: b\n\n# between\n\ndn: c\ncn: c",
		want: []item{
			rec(Record{Line: 3, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}}),
			rec(Record{Line: 8, DN: "b", Attrs: []Attr{{"cn", []string{"b"}}}}),
			rec(Record{Line: 13, DN: "c", Attrs: []Attr{{"cn", []string{"c"}}}}),
		},
	},
	{
		name: "no trailing newline after CR",
		in:   "dn: a\r\ncn: a\r",
		want: []item{rec(Record{Line: 1, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}})},
	},
	{
		name: "whitespace-only lines separate records",
		in:   "dn: a\ncn: a\n \t\ndn: b\ncn: b\n  \n",
		want: []item{
			rec(Record{Line: 1, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}}),
			rec(Record{Line: 4, DN: "b", Attrs: []Attr{{"cn", []string{"b"}}}}),
		},
	},
	{
		name:    "byte order mark",
		in:      "\xef\xbb\xbfversion: 1\ndn: a\ncn: a\n",
		want:    []item{rec(Record{Line: 2, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}})},
		version: 1,
	},
	{
		name: "base64 UTF-8 dn and empty dn",
		in:   "dn:: Y249Sm9zw6kgTcO8bGxlcixvdT1QZW9wbGUsZGM9ZXhhbXBsZSxkYz1jb20=\ncn: x\n\ndn:\nobjectClass: top\n",
		want: []item{
			rec(Record{Line: 1, DN: "cn=José Müller,ou=People,dc=example,dc=com", Attrs: []Attr{{"cn", []string{"x"}}}}),
			rec(Record{Line: 4, DN: "", Attrs: []Attr{{"objectClass", []string{"top"}}}}),
		},
	},
	{
		name: "content record without attributes",
		in:   "dn: uid=a,dc=x\n\ndn: uid=b,dc=x\n",
		want: []item{rec(Record{Line: 1, DN: "uid=a,dc=x"}), rec(Record{Line: 3, DN: "uid=b,dc=x"})},
	},
	{
		name: "changetype not after dn is an attribute",
		in:   "dn: changenumber=1,cn=changelog\nobjectClass: changelogentry\nchangeType: delete\n",
		want: []item{rec(Record{Line: 1, DN: "changenumber=1,cn=changelog", Attrs: []Attr{
			{"objectClass", []string{"changelogentry"}},
			{"changeType", []string{"delete"}},
		}})},
	},

	// Change records.
	{
		name: "changetype add",
		in:   "dn: uid=a,dc=x\nchangetype: add\nobjectClass: top\nobjectClass: person\ncn: a\nsn:: QQ==\n",
		want: []item{rec(Record{Line: 1, DN: "uid=a,dc=x", ChangeType: "add", Attrs: []Attr{
			{"objectClass", []string{"top", "person"}},
			{"cn", []string{"a"}},
			{"sn", []string{"A"}},
		}})},
	},
	{
		name: "changetype delete",
		in:   "dn: uid=a,dc=x\nchangetype: delete\n\nDN: uid=b,dc=x\nCHANGETYPE: Delete \n",
		want: []item{
			rec(Record{Line: 1, DN: "uid=a,dc=x", ChangeType: "delete"}),
			rec(Record{Line: 4, DN: "uid=b,dc=x", ChangeType: "delete"}),
		},
	},
	{
		name: "changetype modify, all operations",
		in: "dn: uid=a,dc=x\nchangetype: modify\nadd: mail\nmail: a@x\nmail:: YkB4\n-\ndelete: telephoneNumber\n-\n" +
			"delete: cn\ncn: old\n-\nreplace: sn\nsn: New\n-\nreplace: seeAlso\n-\nincrement: uidNumber\nuidNumber: 1\n-\n",
		want: []item{rec(Record{Line: 1, DN: "uid=a,dc=x", ChangeType: "modify", Mods: []Mod{
			{"add", "mail", []string{"a@x", "b@x"}},
			{"delete", "telephoneNumber", nil},
			{"delete", "cn", []string{"old"}},
			{"replace", "sn", []string{"New"}},
			{"replace", "seeAlso", nil},
			{"increment", "uidNumber", []string{"1"}},
		}})},
	},
	{
		name: "modify, last block without dash, keywords in any case",
		in:   "dn: uid=a,dc=x\nChangeType: MODIFY\nReplace: Mail \nMAIL: a@x\n- \nADD: cn;lang-en\nCN;lang-EN: A\n\ndn: uid=b,dc=x\nchangetype: modify\n",
		want: []item{
			rec(Record{Line: 1, DN: "uid=a,dc=x", ChangeType: "modify", Mods: []Mod{
				{"replace", "Mail", []string{"a@x"}},
				{"add", "cn;lang-en", []string{"A"}},
			}}),
			rec(Record{Line: 9, DN: "uid=b,dc=x", ChangeType: "modify"}),
		},
	},
	{
		name: "modrdn",
		in: "dn: uid=a,ou=old,dc=x\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 1\nnewsuperior: ou=new,dc=x\n\n" +
			"dn: uid=c,dc=x\nchangetype: moddn\nnewrdn:: dWlkPXpvw6s=\ndeleteoldrdn: 0\n",
		want: []item{
			rec(Record{Line: 1, DN: "uid=a,ou=old,dc=x", ChangeType: "modrdn", NewRDN: "uid=b", DeleteOldRDN: true, NewSuperior: "ou=new,dc=x"}),
			rec(Record{Line: 7, DN: "uid=c,dc=x", ChangeType: "modrdn", NewRDN: "uid=zoë"}),
		},
	},
	{
		name: "controls",
		in: "dn: uid=a,dc=x\ncontrol: 1.2.840.113556.1.4.805 true\ncontrol: 1.2.3 false: plain value\n" +
			"control: 1.2.3.4:: AAEC\ncontrol: 1.2.3.5\ncontrol: 1.2.3.6 TRUE:: \nchangetype: delete\n",
		want: []item{rec(Record{Line: 1, DN: "uid=a,dc=x", ChangeType: "delete", Controls: []Control{
			{"1.2.840.113556.1.4.805", true, ""},
			{"1.2.3", false, "plain value"},
			{"1.2.3.4", false, "\x00\x01\x02"},
			{"1.2.3.5", false, ""},
			{"1.2.3.6", true, ""},
		}})},
	},
	{
		name: "mixed content and change records",
		in:   "dn: a\ncn: a\n\ndn: b\nchangetype: delete\n\ndn: c\ncn: c\n",
		want: []item{
			rec(Record{Line: 1, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}}),
			rec(Record{Line: 4, DN: "b", ChangeType: "delete"}),
			rec(Record{Line: 7, DN: "c", Attrs: []Attr{{"cn", []string{"c"}}}}),
		},
	},

	// Errors. After an error inside a record, reading resumes at the next
	// record.
	{
		name: "missing dn, then recovery",
		in:   "dn: a\ncn: a\n\ncn: b\nsn: b\n\ndn: c\ncn: c\n",
		want: []item{
			rec(Record{Line: 1, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}}),
			fail(4, 1, `missing dn: record starts with "cn"`),
			rec(Record{Line: 7, DN: "c", Attrs: []Attr{{"cn", []string{"c"}}}}),
		},
	},
	{
		name: "bad base64",
		in:   "dn: a\ncn:: QUJ$\nsn: x\n\ndn: b\ncn: b\n",
		want: []item{
			fail(2, 9, `invalid base64 value for "cn"`),
			rec(Record{Line: 5, DN: "b", Attrs: []Attr{{"cn", []string{"b"}}}}),
		},
	},
	{
		name: "bad base64 on a folded line",
		in:   "dn: a\ncn:: QUJD\n RA$=\n",
		want: []item{fail(3, 4, "invalid base64")},
	},
	{
		name: "bad base64 dn",
		in:   "dn:: !!!!\ncn: a\n",
		want: []item{fail(1, 6, "invalid base64")},
	},
	{
		name: "base64 dn not UTF-8",
		in:   "dn:: //4=\ncn: a\n",
		want: []item{fail(1, 6, "not valid UTF-8")},
	},
	{
		name: "URL value",
		in:   "dn: a\njpegPhoto:< file:///tmp/photo.jpg\n",
		want: []item{fail(2, 13, "URL values are not supported")},
	},
	{
		name: "URL dn",
		in:   "dn:< http://example.com/dn\n",
		want: []item{fail(1, 6, "URL values are not supported")},
	},
	{
		name: "unknown changetype",
		in:   "dn: a\nchangetype: rename\nnewrdn: b\n\ndn: b\nchangetype: delete\n",
		want: []item{
			fail(2, 13, `unknown changetype "rename"`),
			rec(Record{Line: 5, DN: "b", ChangeType: "delete"}),
		},
	},
	{
		name: "attribute line without colon",
		in:   "dn: a\ncn a\n",
		want: []item{fail(2, 1, "missing ':'")},
	},
	{
		name: "attribute name missing",
		in:   "dn: a\n: a\n",
		want: []item{fail(2, 1, "missing attribute name")},
	},
	{
		name: "invalid character in attribute name",
		in:   "dn: a\nc n: a\n",
		want: []item{fail(2, 2, "invalid character ' '")},
	},
	{
		name: "mod block attribute mismatch",
		in:   "dn: a\nchangetype: modify\nreplace: mail\nmail: a@x\ncn: x\n-\n",
		want: []item{fail(5, 1, `attribute "cn" does not match "replace: mail"`)},
	},
	{
		name: "modify: unknown operation",
		in:   "dn: a\nchangetype: modify\nmail: a@x\n",
		want: []item{fail(3, 1, "expected add:, delete:, replace: or increment:")},
	},
	{
		name: "modify: stray dash",
		in:   "dn: a\nchangetype: modify\n-\n",
		want: []item{fail(3, 1, `unexpected "-" line`)},
	},
	{
		name: "modify: operation without attribute",
		in:   "dn: a\nchangetype: modify\nreplace:\n",
		want: []item{fail(3, 9, "missing attribute description after replace:")},
	},
	{
		name: "dash outside modify",
		in:   "dn: a\ncn: a\n-\n",
		want: []item{fail(3, 1, "missing ':'")},
	},
	{
		name: "invalid deleteoldrdn",
		in:   "dn: a\nchangetype: modrdn\nnewrdn: b\ndeleteoldrdn: yes\n",
		want: []item{fail(4, 15, `invalid deleteoldrdn value "yes"`)},
	},
	{
		name: "modrdn without newrdn",
		in:   "dn: a\nchangetype: modrdn\n\ndn: b\ncn: b\n",
		want: []item{fail(2, 0, "no newrdn"), rec(Record{Line: 4, DN: "b", Attrs: []Attr{{"cn", []string{"b"}}}})},
	},
	{
		name: "modrdn without deleteoldrdn",
		in:   "dn: a\nchangetype: modrdn\nnewrdn: b\n",
		want: []item{fail(3, 0, "no deleteoldrdn")},
	},
	{
		name: "modrdn lines out of order",
		in:   "dn: a\nchangetype: modrdn\ndeleteoldrdn: 1\nnewrdn: b\n",
		want: []item{fail(3, 1, "expected newrdn:")},
	},
	{
		name: "modrdn trailing line",
		in:   "dn: a\nchangetype: modrdn\nnewrdn: b\ndeleteoldrdn: 1\nnewsuperior: dc=y\ncn: b\n",
		want: []item{fail(6, 1, `unexpected "cn" line after newsuperior:`)},
	},
	{
		name: "content after changetype delete",
		in:   "dn: a\nchangetype: delete\ncn: a\n\ndn: b\ncn: b\n",
		want: []item{
			fail(3, 1, "content after changetype: delete"),
			rec(Record{Line: 5, DN: "b", Attrs: []Attr{{"cn", []string{"b"}}}}),
		},
	},
	{
		name: "changetype add without attributes",
		in:   "dn: a\nchangetype: add\n",
		want: []item{fail(2, 0, "has no attributes")},
	},
	{
		name: "dn inside a record",
		in:   "dn: a\ncn: a\ndn: b\ncn: b\n",
		want: []item{fail(3, 1, "unexpected dn: line")},
	},
	{
		name: "control without changetype",
		in:   "dn: a\ncontrol: 1.2.3\ncn: a\n\ndn: b\ncontrol: 1.2.3\n",
		want: []item{
			fail(3, 1, "control: lines must be followed by changetype:"),
			fail(6, 0, "control: lines must be followed by changetype:"),
		},
	},
	{
		name: "control with bad OID",
		in:   "dn: a\ncontrol: 1..2 true\nchangetype: delete\n",
		want: []item{fail(2, 10, "invalid control OID")},
	},
	{
		name: "control with junk",
		in:   "dn: a\ncontrol: 1.2 maybe\nchangetype: delete\n",
		want: []item{fail(2, 14, `unexpected "maybe"`)},
	},
	{
		name: "continuation without a preceding line",
		in:   " cn: a\ndn: a\ncn: a\n",
		want: []item{
			fail(1, 1, "continuation line without a preceding line"),
			rec(Record{Line: 2, DN: "a", Attrs: []Attr{{"cn", []string{"a"}}}}),
		},
	},
	{
		name: "unsupported version is final",
		in:   "version: 2\n\ndn: a\ncn: a\n",
		want: []item{fail(1, 10, `unsupported LDIF version "2"`)},
	},
}

func TestReader(t *testing.T) {
	for _, tc := range readerCases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in))
			got := readAll(t, r)
			compareItems(t, got, tc.want)
			if v := r.Version(); v != tc.version {
				t.Errorf("Version() = %d, want %d", v, tc.version)
			}
		})
	}
}

// readAll reads r to io.EOF or to a final (repeated) error.
func readAll(t *testing.T, r *Reader) []item {
	t.Helper()
	var got []item
	var last error
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Next does not terminate")
		}
		rec, err := r.Next()
		if err == io.EOF {
			if rec != nil {
				t.Errorf("Next returned a record with io.EOF")
			}
			return got
		}
		if err != nil {
			if rec != nil {
				t.Errorf("Next returned a record with error %v", err)
			}
			if err == last {
				return got // final error
			}
			last = err
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Next error %v (%T) is not *Error", err, err)
			}
			got = append(got, item{Err: e})
			continue
		}
		got = append(got, item{Rec: rec})
	}
}

func compareItems(t *testing.T, got, want []item) {
	t.Helper()
	n := max(len(got), len(want))
	for i := 0; i < n; i++ {
		var g, w item
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !itemMatches(g, w) {
			t.Errorf("result %d:\n got: %s\nwant: %s", i, dumpItem(g), dumpItem(w))
		}
	}
}

func itemMatches(g, w item) bool {
	switch {
	case w.Rec == nil && w.Err == nil:
		return g.Rec == nil && g.Err == nil
	case w.Rec != nil:
		return g.Rec != nil && reflect.DeepEqual(g.Rec, w.Rec)
	default:
		return g.Err != nil && g.Err.Line == w.Err.Line && g.Err.Column == w.Err.Column &&
			strings.Contains(g.Err.Msg, w.Err.Msg)
	}
}

func dumpItem(it item) string {
	switch {
	case it.Rec != nil:
		return dumpRecord(it.Rec)
	case it.Err != nil:
		return fmt.Sprintf("error %q (line %d, column %d)", it.Err.Error(), it.Err.Line, it.Err.Column)
	}
	return "(nothing)"
}

// dumpRecord prints a record one field a line, so that differences stand
// out.
func dumpRecord(r *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Record{Line: %d, DN: %q, ChangeType: %q", r.Line, r.DN, r.ChangeType)
	for _, a := range r.Attrs {
		fmt.Fprintf(&b, "\n    attr %q %q", a.Name, a.Values)
	}
	for _, m := range r.Mods {
		fmt.Fprintf(&b, "\n    mod %s %q %q (nil=%v)", m.Op, m.Attr, m.Values, m.Values == nil)
	}
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "\n    control %q %v %q", c.OID, c.Criticality, c.Value)
	}
	if r.NewRDN != "" || r.DeleteOldRDN || r.NewSuperior != "" {
		fmt.Fprintf(&b, "\n    newrdn %q deleteoldrdn %v newsuperior %q", r.NewRDN, r.DeleteOldRDN, r.NewSuperior)
	}
	fmt.Fprintf(&b, "\n    (Attrs nil=%v, Mods nil=%v, Controls nil=%v)}", r.Attrs == nil, r.Mods == nil, r.Controls == nil)
	return b.String()
}

func TestIsChange(t *testing.T) {
	if (&Record{}).IsChange() {
		t.Error("content record reported as change")
	}
	if !(&Record{ChangeType: "modify"}).IsChange() {
		t.Error("modify record not reported as change")
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{Line: 12, Msg: "msg"}, "line 12: msg"},
		{Error{Line: 12, Column: 5, Msg: "msg"}, "line 12:5: msg"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestChangelog389 reads a 389-ds retro changelog export, whose entries
// carry a changeType attribute and an LDIF fragment in "changes".
func TestChangelog389(t *testing.T) {
	const in = `dn: changenumber=7,cn=changelog
objectClass: top
objectClass: changelogentry
objectClass: extensibleObject
changeNumber: 7
targetDn: uid=jdoe,ou=People,dc=example,dc=com
targetUniqueId: 5f0a6e01-1dd211b2-8b9fe1a3-0c3e1f21
changeTime: 20260114093012Z
changeType: modify
changes:: cmVwbGFjZTogbWFpbAptYWlsOiBuZXdAZXhhbXBsZS5jb20KLQpyZXBsYWNlOiBtb2RpZmllcnNuYW1lCm1vZGlmaWVyc25hbWU6IGNuPWRpcmVjdG9yeSBtYW5hZ2VyCi0K

dn: changenumber=8,cn=changelog
objectClass: top
objectClass: changelogentry
changeNumber: 8
targetDn: uid=old,ou=People,dc=example,dc=com
changeTime: 20260114093100Z
changeType: delete
`
	r := NewReader(strings.NewReader(in))
	got := readAll(t, r)
	changes := "replace: mail\nmail: new@example.com\n-\nreplace: modifiersname\nmodifiersname: cn=directory manager\n-\n"
	compareItems(t, got, []item{
		rec(Record{Line: 1, DN: "changenumber=7,cn=changelog", Attrs: []Attr{
			{"objectClass", []string{"top", "changelogentry", "extensibleObject"}},
			{"changeNumber", []string{"7"}},
			{"targetDn", []string{"uid=jdoe,ou=People,dc=example,dc=com"}},
			{"targetUniqueId", []string{"5f0a6e01-1dd211b2-8b9fe1a3-0c3e1f21"}},
			{"changeTime", []string{"20260114093012Z"}},
			{"changeType", []string{"modify"}},
			{"changes", []string{changes}},
		}}),
		rec(Record{Line: 12, DN: "changenumber=8,cn=changelog", Attrs: []Attr{
			{"objectClass", []string{"top", "changelogentry"}},
			{"changeNumber", []string{"8"}},
			{"targetDn", []string{"uid=old,ou=People,dc=example,dc=com"}},
			{"changeTime", []string{"20260114093100Z"}},
			{"changeType", []string{"delete"}},
		}}),
	})
	if len(got) == 0 || got[0].Rec == nil {
		return
	}

	// The changes value is itself the body of a modify record.
	frag := "dn: uid=jdoe,ou=People,dc=example,dc=com\nchangetype: modify\n" + changes
	got = readAll(t, NewReader(strings.NewReader(frag)))
	compareItems(t, got, []item{rec(Record{
		Line: 1, DN: "uid=jdoe,ou=People,dc=example,dc=com", ChangeType: "modify",
		Mods: []Mod{
			{"replace", "mail", []string{"new@example.com"}},
			{"replace", "modifiersname", []string{"cn=directory manager"}},
		},
	})})
}

// TestLineLimit checks the limit on logical lines with a small limit.
func TestLineLimit(t *testing.T) {
	long := strings.Repeat("x", 40)
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"physical line", "dn: a\ncn: " + long + "\n", 2},
		{"folded line", "dn: a\ncn: " + long[:20] + "\n " + long[:20] + "\n", 2},
		{"comment line", "dn: a\n#" + long + "\ncn: a\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in))
			r.maxLine = 32
			_, err := r.Next()
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.line || !strings.Contains(e.Msg, "line longer than 32 bytes") {
				t.Fatalf("Next error = %v, want line %d too long", err, tc.line)
			}
			if _, err2 := r.Next(); err2 != err {
				t.Errorf("error is not final: second Next returned %v", err2)
			}
		})
	}
	t.Run("folded comment is not limited", func(t *testing.T) {
		in := "#" + long[:20] + "\n " + long[:30] + "\n " + long[:30] + "\ndn: a\n"
		r := NewReader(strings.NewReader(in))
		r.maxLine = 32
		got := readAll(t, r)
		compareItems(t, got, []item{rec(Record{Line: 4, DN: "a"})})
	})
}

// repeatReader yields n bytes of c without holding them in memory.
type repeatReader struct {
	c byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = r.c
	}
	r.n -= k
	return k, nil
}

// TestMaxLineLength feeds a real line over 16 MiB.
func TestMaxLineLength(t *testing.T) {
	in := io.MultiReader(strings.NewReader("dn: a\ncn: "), &repeatReader{c: 'x', n: MaxLineLength + 1}, strings.NewReader("\n"))
	r := NewReader(in)
	_, err := r.Next()
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || !strings.Contains(e.Msg, "line longer than") {
		t.Fatalf("Next error = %v, want line 2 too long", err)
	}

	// A line just under the limit is fine.
	in = io.MultiReader(strings.NewReader("dn: a\nc: "), &repeatReader{c: 'x', n: MaxLineLength - 3}, strings.NewReader("\n"))
	rec, err := NewReader(in).Next()
	if err != nil {
		t.Fatalf("line of exactly MaxLineLength: %v", err)
	}
	if got := len(rec.Attrs[0].Values[0]); got != MaxLineLength-3 {
		t.Errorf("value length %d, want %d", got, MaxLineLength-3)
	}
}

// errAfter returns its data, then fails.
type errAfter struct {
	data string
	err  error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestStreamingAndIOError checks that a record is returned before the
// reader looks past it, and that I/O errors are returned as they are and
// are final.
func TestStreamingAndIOError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(&errAfter{data: "dn: a\ncn: a\n\n", err: boom})
	rec, err := r.Next()
	if err != nil || rec.DN != "a" {
		t.Fatalf("first Next = %v, %v; want record a", rec, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := r.Next(); err != boom {
			t.Fatalf("Next #%d error = %v, want %v", i+2, err, boom)
		}
	}
}

// TestLongPhysicalLines exercises lines longer than the bufio buffer.
func TestLongPhysicalLines(t *testing.T) {
	big := strings.Repeat("ab", bufSize) // 2 buffers
	in := "dn: a\r\ndescription: " + big + "\r\n " + big + "\r\n" + "cn: c"
	got := readAll(t, NewReader(strings.NewReader(in)))
	compareItems(t, got, []item{rec(Record{Line: 1, DN: "a", Attrs: []Attr{
		{"description", []string{big + big}},
		{"cn", []string{"c"}},
	}})})
}
