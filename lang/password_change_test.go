package lang_test

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

const newPW = "N3w-Clear-pw!"

func pwChange(typ lang.ChangeType, pw string, changed ...string) *lang.Change {
	e := lang.NewEntry("uid=a,dc=x", []lang.Attr{{Name: "uid", Values: []string{"a"}}, {Name: "cn", Values: []string{"A"}},
		{Name: "userPassword", Values: []string{"{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY="}}})
	return &lang.Change{Type: typ, DN: e.DN, Entry: e, Changed: changed, NewPassword: secret.New(pw)}
}

// TestPasswordChange: the new password a change carries is sent on create
// (the POST body) and by the update of the modify that carried it, never in
// resync, never when the change carries none, never with passwords =
// "skip", and a hashed value is an error, not a value.
func TestPasswordChange(t *testing.T) {
	tests := []struct {
		name     string
		mapping  string
		scim     string // extra scim block settings
		change   *lang.Change
		mode     lang.Mode
		wantPW   string // PasswordChange's value; "" when none
		inCreate bool   // the create body carries the password
		err      string
	}{
		{"modify carries it", "@realtime password = newPassword", "", pwChange(lang.Modify, newPW, "userPassword"), lang.Realtime, newPW, true, ""},
		{"add carries it", "@realtime password = newPassword", "", pwChange(lang.Add, newPW), lang.Realtime, newPW, true, ""},
		{"modify without one", "@realtime password = newPassword", "", pwChange(lang.Modify, "", "cn"), lang.Realtime, "", false, ""},
		{"resync never", "password = newPassword", "", pwChange(lang.Add, newPW), lang.Resync, "", false, ""},
		{"realtime only mapping in resync", "@realtime password = newPassword", "", pwChange(lang.Add, newPW), lang.Resync, "", false, ""},
		{"skipped for the service", "@realtime password = newPassword", `passwords = "skip"`, pwChange(lang.Modify, newPW, "userPassword"), lang.Realtime, "", false, ""},
		{"default when none", `@realtime password = newPassword ?? ""`, "", pwChange(lang.Modify, "", "cn"), lang.Realtime, "", false, ""},
		{"hashed is refused", "@realtime password = newPassword", "", pwChange(lang.Modify, "{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY=", "userPassword"),
			lang.Realtime, "", false, "stored password hash"},
		{"no password mapping", "displayName = first(cn)", "", pwChange(lang.Modify, newPW, "userPassword"), lang.Realtime, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := strings.Replace(usersScript, "%MAP%", "    "+tt.mapping, 1)
			script = strings.Replace(script, `scim { url = "https://scim.example.com/v2" }`, `scim { url = "https://scim.example.com/v2"
  `+tt.scim+` }`, 1)
			p, err := lang.Load("t.pipe", script, lang.LoadOptions{LookupEnv: fakeEnv})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.NewEvaluator().Eval(tt.change, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			pw, ok, err := res.PasswordChange()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "c2FsdGVk") {
					t.Fatalf("PasswordChange error = %v, want %q without the value", err, tt.err)
				}
				return
			}
			if err != nil || pw != tt.wantPW || ok != (tt.wantPW != "") {
				t.Errorf("PasswordChange = %q, %v, %v; want %q", pw, ok, err, tt.wantPW)
			}
			body, err := res.Resource(lang.Create, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(body), newPW); got != tt.inCreate {
				t.Errorf("create body carries the password: %v, want %v", got, tt.inCreate)
			}
			if !tt.change.NewPassword.IsZero() && !contains(res.Secrets(), tt.change.NewPassword.Reveal()) {
				t.Errorf("Secrets() lacks the new password")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNewPasswordIsSecret: an expression reading newPassword has its
// runtime error withheld and its REPL value shown as (withheld); a modify
// that changed only userPassword reaches a class whose only reader of it
// is newPassword.
func TestNewPasswordIsSecret(t *testing.T) {
	p, err := loadMap(t, "    @realtime password = newPassword\n    title = string(int(newPassword))")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.NewEvaluator().Eval(pwChange(lang.Modify, newPW, "userPassword"), lang.Realtime)
	if err == nil || strings.Contains(err.Error(), newPW) || !strings.Contains(err.Error(), "withheld") {
		t.Errorf("error: %v", err)
	}
	x, err := p.CompileExpr("<input>", "newPassword")
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.NewEvaluator().EvalExpr(x, pwChange(lang.Modify, newPW, "userPassword"))
	if err != nil || v != secret.Withheld || !x.Secret() {
		t.Errorf("EvalExpr = %v, %v (secret %v)", v, err, x.Secret())
	}
	if !p.Class("people").Reads(lang.Realtime, []string{"userPassword"}) {
		t.Error("a modify of userPassword does not reach the class that maps newPassword")
	}
}

// TestPasswordSourceDiagnostics: a dirsync pipe that maps a password is
// warned at load (DirSync never returns one); passwordKey is refused on
// any source but a changelog.
func TestPasswordSourceDiagnostics(t *testing.T) {
	dirsync := strings.Replace(usersScript, `source ldif { file = "x.ldif" }`, `source dirsync { url = "ldaps://dc.example.com" }`, 1)
	dirsync = strings.Replace(dirsync, "%MAP%", "    @realtime password = newPassword", 1)
	p, err := lang.Load("t.pipe", dirsync, lang.LoadOptions{LookupEnv: fakeEnv})
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Warnings(); w == nil || !strings.Contains(w.Error(), "t.pipe:13:26: warning: password: source dirsync never carries a password") {
		t.Errorf("warnings: %v", w)
	}
	key := strings.Replace(usersScript, `source ldif { file = "x.ldif" }`, `source syncrepl {
  url = "ldap://127.0.0.1"
  passwordKey = "k"
}`, 1)
	_, err = lang.Load("t.pipe", strings.Replace(key, "%MAP%", "", 1), lang.LoadOptions{LookupEnv: fakeEnv})
	if err == nil || !strings.Contains(err.Error(), "t.pipe:4:17: passwordKey applies to a changelog source only") {
		t.Errorf("err = %v", err)
	}
}
