package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

func TestChangedAttrs(t *testing.T) {
	tests := []struct {
		name    string
		typ     lang.ChangeType
		changes string
		want    []string
	}{
		{
			name: "389 modify with trailing NUL and operational attributes",
			typ:  lang.Modify,
			changes: "replace: mail\nmail: john.doe@example.com\n-\nadd: telephoneNumber\ntelephoneNumber: +1 555 0100\n-\n" +
				"replace: modifiersname\nmodifiersname: cn=directory manager\n-\nreplace: modifytimestamp\nmodifytimestamp: 20261123080534Z\n-\n\x00",
			want: []string{"mail", "telephoneNumber"},
		},
		{
			name: "folded lines and a base64 password",
			typ:  lang.Modify,
			changes: "replace: userPassword\nuserPassword:: e1BCS0RGMi1TSEE1MTJ9MTAwMDAkYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo\n" +
				" wMTIzNDU2Nzg5\n-\nreplace: description\ndescription: a long description that the server\n  folded at seventy-six columns\n-\n" +
				"replace: unhashed#user#password\nunhashed#user#password: cleartext\n-\n\x00",
			want: []string{"userPassword", "description"},
		},
		{
			name:    "389 modrdn changes: only operational",
			typ:     lang.Modify,
			changes: "replace: modifiersname\nmodifiersname: cn=dm\n-\nreplace: modifytimestamp\nmodifytimestamp: 20261123080534Z\n-\n\x00",
			want:    nil,
		},
		{
			name:    "add: attribute lines",
			typ:     lang.Add,
			changes: "objectClass: inetOrgPerson\nuid: jdoe\ncn: John Doe\ncreatorsName: cn=dm\nentryid: 4\n\x00",
			want:    []string{"objectClass", "uid", "cn"},
		},
		{name: "empty", typ: lang.Modify, changes: "\x00", want: nil},
		{name: "CRLF", typ: lang.Modify, changes: "replace: mail\r\nmail: x@example.com\r\n-\r\n", want: []string{"mail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := changedAttrs(tt.typ, []byte(tt.changes))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChangedAttrsErrorHasNoValue(t *testing.T) {
	// a broken block whose value is a password: the error must not show it
	_, err := changedAttrs(lang.Modify, []byte("replace: userPassword\nuserPassword: S3cret!pw\nmail: S3cret!pw\n-\n\x00"))
	if err == nil {
		t.Fatal("no error for a mismatched modify block")
	}
	if strings.Contains(err.Error(), "S3cret") {
		t.Fatalf("error leaks the value: %v", err)
	}
	if !strings.Contains(err.Error(), "line") {
		t.Errorf("error does not say where: %v", err)
	}
}

func TestParseChangelogEntry(t *testing.T) {
	e := ldap.NewEntry("changenumber=8,cn=changelog", map[string][]string{
		"changeNumber":   {"8"},
		"targetDN":       {"uid=jdoe,ou=People,dc=example,dc=com"},
		"changeType":     {"modrdn"},
		"newRDN":         {"uid=john"},
		"deleteOldRDN":   {"TRUE"},
		"targetUniqueId": {"a643810b-e71411f1-93c790ed-6fb05fe7"},
	})
	r, err := parseChangelogEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	if r.typ != lang.ModRDN || !r.deleteOld || r.newRDN != "uid=john" {
		t.Errorf("record %+v", r)
	}
	if got := renamedDN(r.dn, r.newRDN, r.newSuperior); got != "uid=john,ou=People,dc=example,dc=com" {
		t.Errorf("renamed DN %q", got)
	}
	if got := r.identity(""); got != "a643810b-e714-11f1-93c7-90ed6fb05fe7" {
		t.Errorf("identity %q", got)
	}
	if !reflect.DeepEqual(r.changed, []string{"uid"}) {
		t.Errorf("changed %q", r.changed)
	}
}

func TestCanonicalIdentity(t *testing.T) {
	tests := []struct{ attr, in, want string }{
		{"nsUniqueId", "A643810B-E71411F1-93C790ED-6FB05FE7", "a643810b-e714-11f1-93c7-90ed6fb05fe7"},
		{"entryUUID", "E987EA64-7B5F-1041-9455-93BA09B4CDA5", "e987ea64-7b5f-1041-9455-93ba09b4cda5"},
		{"objectGUID", string([]byte{0x2f, 0x07, 0x65, 0x61, 0xc4, 0xdf, 0x41, 0x43, 0xbe, 0xd7, 0x15, 0x83, 0x93, 0xc6, 0x48, 0xe3}),
			"6165072f-dfc4-4341-bed7-158393c648e3"},
	}
	for _, tt := range tests {
		got := canonicalIdentity(tt.attr, tt.in)
		if got != tt.want {
			t.Errorf("canonicalIdentity(%s, %q) = %q, want %q", tt.attr, tt.in, got, tt.want)
		}
	}
	if got := nativeIdentity("nsUniqueId", "a643810b-e714-11f1-93c7-90ed6fb05fe7"); got != "a643810b-e71411f1-93c790ed-6fb05fe7" {
		t.Errorf("nativeIdentity nsUniqueId = %q", got)
	}
	if got := nativeIdentity("objectGUID", "6165072f-dfc4-4341-bed7-158393c648e3"); got != `\2f\07\65\61\c4\df\41\43\be\d7\15\83\93\c6\48\e3` {
		t.Errorf("nativeIdentity objectGUID = %q", got)
	}
}

func TestScope(t *testing.T) {
	sc, err := newScope([]string{"ou=People,dc=example,dc=com", "OU=Groups,DC=Example,DC=com"})
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]bool{
		"uid=a,ou=people,dc=example,dc=com": true,
		"ou=People,dc=example,dc=com":       true,
		"cn=g,ou=groups,dc=example,dc=com":  true,
		"uid=a,ou=Staff,dc=example,dc=com":  false,
		"dc=example,dc=com":                 false,
	} {
		if got := sc.contains(dn); got != want {
			t.Errorf("contains(%q) = %v", dn, got)
		}
	}
}

func TestPositionKind(t *testing.T) {
	if _, err := OpenLDIFFile("x.ldif", "changelog:12"); !errors.Is(err, ErrBadPosition) {
		t.Errorf("ldif source with a changelog checkpoint: %v", err)
	}
	_, err := Open(context.Background(), lang.SourceConfig{Kind: "changelog", URLs: []string{"ldap://127.0.0.1:1"}}, "syncrepl:AAAA", Options{})
	if !errors.Is(err, ErrBadPosition) {
		t.Errorf("changelog source with a syncrepl checkpoint: %v", err)
	}
	_, err = StartPoint(context.Background(), lang.SourceConfig{Kind: "syncrepl"}, StartSpec{Kind: StartRewind}, Options{})
	if !errors.Is(err, ErrUnsupportedStart) {
		t.Errorf("syncrepl --rewind: %v", err)
	}
	if !errors.Is(&TrimmedError{Checkpoint: 4, First: 9, Missing: 5}, ErrTrimmed) {
		t.Error("TrimmedError is not ErrTrimmed")
	}
}

func TestDialerConfig(t *testing.T) {
	for _, cfg := range []lang.SourceConfig{
		{Kind: "changelog"},
		{Kind: "changelog", URLs: []string{"http://x"}},
		{Kind: "changelog", URLs: []string{"ldaps://x"}, StartTLS: true},
		{Kind: "changelog", URLs: []string{"ldap://x"}, CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := newDialer(cfg, Options{}); err == nil {
			t.Errorf("newDialer(%+v) accepted", cfg)
		}
	}
}

func TestDialFailoverAndBackoff(t *testing.T) {
	// nothing listens on these ports: every round fails, dialRetry backs
	// off until the context ends
	d, err := newDialer(lang.SourceConfig{Kind: "changelog", URLs: []string{"ldap://127.0.0.1:1", "ldap://127.0.0.1:2"}}, Options{MinBackoff: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.dial(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "127.0.0.1:2") {
		t.Fatalf("dial error does not name both servers: %v", err)
	}
	if !retryable(errors.Unwrap(errors.Unwrap(err))) && !retryable(err) {
		t.Logf("note: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100_000_000)
	defer cancel()
	if _, err := d.dialRetry(ctx, 0, "test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dialRetry: %v", err)
	}
}

func TestDirSyncEvent(t *testing.T) {
	guid := string([]byte{0x2f, 0x07, 0x65, 0x61, 0xc4, 0xdf, 0x41, 0x43, 0xbe, 0xd7, 0x15, 0x83, 0x93, 0xc6, 0x48, 0xe3})
	id := canonicalIdentity("objectGUID", guid)
	known := map[string]string{}
	last := func(id string) (string, bool) { dn, ok := known[id]; return dn, ok }
	mk := func(dn string, attrs map[string][]string) *ldap.Entry {
		e := ldap.NewEntry(dn, attrs)
		e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: "objectGUID", Values: []string{guid}, ByteValues: [][]byte{[]byte(guid)}})
		return e
	}
	ev, fetch := dirsyncEvent(mk("CN=John Doe,CN=Users,DC=example,DC=com", map[string][]string{"mail": {"j@example.com"}, "instanceType": {"4"}}), id, last)
	if ev.Change.Type != lang.Add || fetch != "<GUID=2f076561c4df4143bed7158393c648e3>" || !reflect.DeepEqual(ev.Change.Changed, []string{"mail"}) {
		t.Errorf("first sight: %+v %q", ev.Change, fetch)
	}
	known[id] = "CN=John Doe,CN=Users,DC=example,DC=com"
	ev, _ = dirsyncEvent(mk("CN=Johnny Doe,CN=Users,DC=example,DC=com", map[string][]string{"description": {"x"}}), id, last)
	if ev.Change.Type != lang.ModRDN || ev.Change.OldDN != known[id] {
		t.Errorf("rename: %+v", ev.Change)
	}
	ev, _ = dirsyncEvent(mk("CN=John Doe\\0ADEL:c752989b,CN=Deleted Objects,DC=example,DC=com", map[string][]string{"isDeleted": {"TRUE"}}), id, last)
	if ev.Change.Type != lang.Delete || ev.Change.DN != known[id] || ev.Identity != id {
		t.Errorf("tombstone: %+v", ev.Change)
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.ldif")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const ldifStream = `dn: uid=a,ou=People,dc=example,dc=com
uid: a
mail: a@example.com

dn: uid=b,ou=People,dc=example,dc=com
uid: b

dn: uid=a,ou=People,dc=example,dc=com
changetype: modify
replace: mail
mail: a2@example.com
-

dn: uid=a,ou=People,dc=example,dc=com
changetype: modrdn
newrdn: uid=c
deleteoldrdn: 1

dn: uid=b,ou=People,dc=example,dc=com
changetype: delete
`

func TestLDIFFileSource(t *testing.T) {
	path := writeFile(t, ldifStream)
	ctx := context.Background()
	read := func(start string) []*Event {
		s, err := Open(ctx, lang.SourceConfig{Kind: "ldif", File: path}, start, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out []*Event
		for {
			ev, err := s.Next(ctx)
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
	}
	all := read("")
	var got []string
	for _, ev := range all {
		got = append(got, ev.Position+" "+ev.Change.Type.String()+" "+ev.Change.DN)
	}
	want := []string{
		"ldif:1 add uid=a,ou=People,dc=example,dc=com",
		"ldif:2 add uid=b,ou=People,dc=example,dc=com",
		"ldif:3 modify uid=a,ou=People,dc=example,dc=com",
		"ldif:4 modrdn uid=c,ou=People,dc=example,dc=com",
		"ldif:5 delete uid=b,ou=People,dc=example,dc=com",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// resume after record 3: the modrdn still carries the modified mail
	rest := read("ldif:3")
	if len(rest) != 2 || rest[0].Position != "ldif:4" || rest[0].Change.Entry.First("mail") != "a2@example.com" {
		t.Fatalf("resumed: %+v", rest)
	}
	if len(read("ldif:5")) != 0 {
		t.Error("resume at the end reported events")
	}
	if _, err := OpenLDIFFile(path, "ldif:9"); !errors.Is(err, ErrBadPosition) {
		t.Errorf("checkpoint past the end: %v", err)
	}
	end, err := StartPoint(ctx, lang.SourceConfig{Kind: "ldif", File: path}, StartSpec{Kind: StartEnd}, Options{})
	if err != nil || end != "ldif:5" {
		t.Errorf("--end = %q, %v", end, err)
	}
	cn, err := StartPoint(ctx, lang.SourceConfig{Kind: "ldif", File: path}, StartSpec{Kind: StartChangeNumber, ChangeNumber: 4}, Options{})
	if err != nil || cn != "ldif:3" {
		t.Errorf("--change-number 4 = %q, %v", cn, err)
	}
}
