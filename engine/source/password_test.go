package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// TestChangelogPassword: the clear text 389-ds records as
// unhashed#user#password (plain or base64, after a folded line, with the
// trailing NUL) is the change's new password; a change without it has
// none; a broken changes value is an error that names no value.
func TestChangelogPassword(t *testing.T) {
	tests := []struct {
		name    string
		typ     lang.ChangeType
		changes string
		want    string
		err     bool
	}{
		{"modify", lang.Modify, "replace: userPassword\nuserPassword:: e1BCS0RGMi1TSEE1MTJ9MTAw\n-\nreplace: modifiersname\nmodifiersname: cn=directory manager\n-\n" +
			"replace: unhashed#user#password\nunhashed#user#password: ModClear-222\n-\n\x00", "ModClear-222", false},
		{"base64", lang.Modify, "replace: unhashed#user#password\nunhashed#user#password:: UMOkc3N3w7ZyZCDDvG7Drw==\n-\n\x00", "Pässwörd ünï", false},
		{"folded", lang.Modify, "replace: unhashed#user#password\nunhashed#user#password: a-very-long-pass\n word-folded\n-\n\x00", "a-very-long-password-folded", false},
		{"add", lang.Add, "uid: a\nunhashed#user#password: AddClear-1\n\x00", "AddClear-1", false},
		{"other attributes", lang.Modify, "replace: sn\nsn: Other\n-\n\x00", "", false},
		{"empty", lang.Modify, "", "", false},
		{"broken", lang.Modify, "replace: unhashed#user#password\nunhashed#user#password:: !!!notbase64-Secret-9\n-\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, err := changelogPassword(tt.typ, []byte(tt.changes))
			if tt.err {
				if err == nil || strings.Contains(err.Error(), "Secret-9") {
					t.Fatalf("err = %v, want an error without the value", err)
				}
				return
			}
			if err != nil || pw.Reveal() != tt.want {
				t.Errorf("= %q, %v; want %q", pw.Reveal(), err, tt.want)
			}
		})
	}
}

// TestDecryptPingPassword: without a key the error says what is missing;
// with one, the undocumented format is an "unsupported format" error, never
// a made-up value.
func TestDecryptPingPassword(t *testing.T) {
	if _, err := decryptPingPassword(secret.Secret{}, []byte("AAECAw")); err == nil || !strings.Contains(err.Error(), "no passwordKey") {
		t.Errorf("no key: %v", err)
	}
	pw, err := decryptPingPassword(secret.New("k"), []byte("AAECAw"))
	if !errors.Is(err, ErrPasswordFormat) || !pw.IsZero() || !strings.Contains(err.Error(), "unsupported format") {
		t.Errorf("with key: %q, %v", pw.Reveal(), err)
	}
}

// TestPasswordTracker: syncrepl reports whole entries, so a clear-text
// userPassword is the change's new password only when it differs from the
// one last seen for the entry, or the entry is new; a hashed value never
// is; an entry first seen after a restart is not re-sent.
func TestPasswordTracker(t *testing.T) {
	steps := []struct {
		id     string
		values []string
		isNew  bool
		want   string
	}{
		{"a", []string{"Clear-1"}, true, "Clear-1"},                          // a new entry
		{"a", []string{"Clear-1"}, false, ""},                                // another attribute changed
		{"a", []string{"Clear-2"}, false, "Clear-2"},                         // the password changed
		{"a", []string{"{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY="}, false, ""}, // hashed
		{"a", []string{"Clear-2"}, false, "Clear-2"},                         // clear again
		{"b", []string{"Clear-9"}, false, ""},                                // known before this process
		{"b", []string{"Clear-10"}, false, "Clear-10"},
		{"c", []string{"{CRYPT}$6$abc$def"}, true, ""},
	}
	tr := newPasswordTracker()
	for i, s := range steps {
		if got := tr.observe(s.id, s.values, s.isNew).Reveal(); got != s.want {
			t.Errorf("step %d (%s %v): %q, want %q", i, s.id, s.values, got, s.want)
		}
	}
}

// TestLDIFPassword: an LDIF source's change carries a clear-text
// userPassword the record sets (an add, a modify's add or replace, a
// content record that changed it), never a hashed one nor one that did
// not change.
func TestLDIFPassword(t *testing.T) {
	const data = `dn: uid=a,dc=x
uid: a
userPassword: Clear-Add-1

dn: uid=h,dc=x
uid: h
userPassword: {SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY=

dn: uid=a,dc=x
changetype: modify
replace: userPassword
userPassword: Clear-Mod-2
-

dn: uid=a,dc=x
changetype: modify
replace: cn
cn: A
-

dn: uid=a,dc=x
changetype: modify
replace: userPassword
userPassword: {PBKDF2-SHA512}10000$abc$def
-

dn: uid=a,dc=x
uid: a
cn: A
userPassword: {PBKDF2-SHA512}10000$abc$def

dn: uid=a,dc=x
uid: a
cn: B
userPassword: {PBKDF2-SHA512}10000$abc$def

dn: uid=a,dc=x
uid: a
cn: B
userPassword: Clear-Content-3
`
	want := []string{"Clear-Add-1", "", "Clear-Mod-2", "", "", "", "", "Clear-Content-3"}
	d := NewDirectory()
	r := ldif.NewReader(strings.NewReader(data))
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err != nil {
			if i != len(want) {
				t.Fatalf("record %d: %v", i, err)
			}
			break
		}
		ch, err := d.Apply(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := ch.NewPassword.Reveal(); got != want[i] {
			t.Errorf("record %d (%s): %q, want %q", i, ch.Type, got, want[i])
		}
	}
}
