package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestDryRunWithholdsSecretsWhereverMapped: a dry run shows "(withheld)"
// for a password value whatever attribute a mapping put it in; only the
// request would carry it.
func TestDryRunWithholdsSecretsWhereverMapped(t *testing.T) {
	p, err := lang.Load("dry.pipe", `pipe "dry"
source ldif { file = "x.ldif" }
scim { url = "http://127.0.0.1:1/scim/v2" }
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
class people {
  endpoint = Users
  map {
    userName = first(uid)
    title    = first(userPassword)
  }
}
`, lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "S3cret-in-a-title"
	var shown []string
	d := &Destination{Pipe: p, Offline: true, DryRun: func(method, path string, body []byte) {
		shown = append(shown, method+" "+path+" "+string(body))
	}}
	ch := &lang.Change{Type: lang.Add, DN: "uid=a,dc=x", Entry: lang.NewEntry("uid=a,dc=x", []lang.Attr{
		{Name: "uid", Values: []string{"a"}}, {Name: "userPassword", Values: []string{secret}}})}
	res, err := p.NewEvaluator().Eval(ch, lang.Resync)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(context.Background(), res, "", nil); err != nil {
		t.Fatal(err)
	}
	if len(shown) != 1 || strings.Contains(shown[0], secret) || !strings.Contains(shown[0], "(withheld)") {
		t.Errorf("the dry run showed %q", shown)
	}
}
