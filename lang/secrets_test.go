package lang_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

const testPassword = "Clear-Pa55-word!"

// TestSecretReadsWithheld: whatever way an expression reaches a password
// attribute (its name in any case, attrs[…], $env by key or member, a
// closure, a let variable), its runtime error withholds the message, and
// the REPL's EvalExpr shows its value as (withheld).
func TestSecretReadsWithheld(t *testing.T) {
	tests := []string{
		`int(first(userPassword))`,
		`int(first(USERPASSWORD))`,
		`int(first(attrs["userPassword"]))`,
		`int(first($env["userpassword"]))`,
		`int($env.userpassword[0])`,
		`int(get($env, "userpassword")[0])`,
		`map(userPassword, int(#))[0] > 0 ? "a" : "b"`,
		`let p = userPassword; string(int(p[0]))`,
	}
	for _, expr := range tests {
		t.Run(expr, func(t *testing.T) {
			// password reads userPassword, so the evaluator binds it for
			// every expression, $env included.
			p, err := loadMap(t, "    password = first(userPassword) ?? \"x\"\n    title = string("+expr+")")
			if err != nil {
				t.Fatal(err)
			}
			ch := &lang.Change{Type: lang.Add, DN: "uid=a,dc=x", Entry: lang.NewEntry("uid=a,dc=x", []lang.Attr{
				{Name: "uid", Values: []string{"a"}}, {Name: "userPassword", Values: []string{testPassword}}})}
			_, err = p.NewEvaluator().Eval(ch, lang.Realtime)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testPassword) || !strings.Contains(err.Error(), "withheld") {
				t.Errorf("error: %v", err)
			}
			x, err := p.CompileExpr("<input>", strings.TrimPrefix(strings.TrimSuffix(expr, ")"), "int("))
			if err != nil {
				return // the inner expression alone is no expression (a let, a map)
			}
			v, err := p.NewEvaluator().EvalExpr(x, ch)
			if err != nil {
				if strings.Contains(err.Error(), testPassword) {
					t.Errorf("EvalExpr error: %v", err)
				}
				return
			}
			if got := fmt.Sprint(v); strings.Contains(got, testPassword) || !x.Secret() {
				t.Errorf("EvalExpr = %v (secret %v)", got, x.Secret())
			}
		})
	}
}

// TestResultSecrets: the values that outputs withhold are the entry's
// password values and what password mappings gave.
func TestResultSecrets(t *testing.T) {
	p, err := loadMap(t, "    password = \"Pre-\" + first(userPassword)\n    title = first(description)")
	if err != nil {
		t.Fatal(err)
	}
	ch := &lang.Change{Type: lang.Add, DN: "uid=a,dc=x", Entry: lang.NewEntry("uid=a,dc=x", []lang.Attr{
		{Name: "uid", Values: []string{"a"}}, {Name: "description", Values: []string{"shown"}},
		{Name: "userPassword", Values: []string{testPassword}}})}
	r, err := p.NewEvaluator().Eval(ch, lang.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Secrets()
	if fmt.Sprint(got) != fmt.Sprint([]string{testPassword, "Pre-" + testPassword}) {
		t.Errorf("Secrets = %q", got)
	}
	doc, err := r.Resource(lang.Create, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "Pre-"+testPassword) {
		t.Errorf("the resource sent lacks the password: %s", doc)
	}
	shown := secret.NewScrubber(secret.Withheld, got...).String(string(doc))
	if strings.Contains(shown, testPassword) || !strings.Contains(shown, `"password":"(withheld)"`) || !strings.Contains(shown, "shown") {
		t.Errorf("shown: %s", shown)
	}
}

// TestSettingErrorQuotesNoValue: a setting whose evaluation fails on a
// value read by env() or file() never quotes the value; env's and file's
// own messages, which name the variable or file, are kept.
func TestSettingErrorQuotesNoValue(t *testing.T) {
	tests := []struct {
		setting, want string
	}{
		{`maxAttempts = int(env("SCIM_TOKEN"))`, "its message is withheld"},
		{`maxAttempts = int(split(env("SCIM_TOKEN"), "-")[1])`, "its message is withheld"},
		{`maxAttempts = int(file("token.txt"))`, "its message is withheld"},
		{`maxAttempts = fromJSON(env("SCIM_TOKEN"))`, "its message is withheld"},
		{`maxAttempts = int(env("NOT_SET_ANYWHERE"))`, "environment variable NOT_SET_ANYWHERE is not set"},
		{`maxAttempts = int(file("missing.txt"))`, "cannot read file missing.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			script := strings.Replace(usersScript, `scim { url = "https://scim.example.com/v2" }`,
				"scim {\n  url = \"https://scim.example.com/v2\"\n  "+tt.setting+"\n}", 1)
			script = strings.Replace(script, "%MAP%", "", 1)
			_, err := lang.Load("t.pipe", script, lang.LoadOptions{LookupEnv: fakeEnv, ReadFile: func(name string) ([]byte, error) {
				if strings.HasSuffix(name, "token.txt") {
					return []byte("s3cr3t-token-value"), nil
				}
				return nil, fmt.Errorf("open %s: no such file", name)
			}})
			if err == nil {
				t.Fatal("loaded")
			}
			if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v", err)
			}
		})
	}
}
