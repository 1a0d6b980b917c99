package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// TestDryRunWithholdsSecretsWhereverMapped: a dry run shows "(withheld)"
// for a password value whatever attribute a mapping put it in; only the
// request would carry it. So does a resync's dry run that shows its
// creates in a Bulk request (bulk = "on": offline, no service to say
// whether it takes Bulk).
func TestDryRunWithholdsSecretsWhereverMapped(t *testing.T) {
	const script = `pipe "dry"
source ldif { file = "x.ldif" }
scim {
  url  = "http://127.0.0.1:1/scim/v2"
  bulk = "%s"
}
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
`
	const secret = "S3cret-in-a-title"
	entry := lang.NewEntry("uid=a,dc=x", []lang.Attr{{Name: "uid", Values: []string{"a"}}, {Name: "userPassword", Values: []string{secret}}})
	for _, tt := range []struct {
		bulk string
		want string // the request shown
	}{
		{"off", "POST /Users "},
		{"on", "POST /Bulk "},
	} {
		t.Run("bulk "+tt.bulk, func(t *testing.T) {
			p, err := lang.Load("dry.pipe", strings.Replace(script, "%s", tt.bulk, 1), lang.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var shown []string
			d := &Destination{Pipe: p, Offline: true, DryRun: func(method, path string, body []byte) {
				shown = append(shown, method+" "+path+" "+string(body))
			}}
			if tt.bulk == "off" {
				res, err := p.NewEvaluator().Eval(&lang.Change{Type: lang.Add, DN: entry.DN, Entry: entry}, lang.Resync)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.Apply(context.Background(), res, "", nil); err != nil {
					t.Fatal(err)
				}
			} else {
				_, dir, err := source.ReadLDIF(strings.NewReader("dn: uid=a,dc=x\nuid: a\nuserPassword: " + secret + "\n\n"))
				if err != nil {
					t.Fatal(err)
				}
				st, err := Resync(context.Background(), p, d, &DirectoryEntries{Dir: dir}, ResyncOptions{})
				if err != nil || st.Created.Load() != 1 {
					t.Fatalf("created %d: %v", st.Created.Load(), err)
				}
			}
			if len(shown) != 1 || !strings.HasPrefix(shown[0], tt.want) || strings.Contains(shown[0], secret) || !strings.Contains(shown[0], `"title":"(withheld)"`) {
				t.Errorf("the dry run showed %q", shown)
			}
		})
	}
}
