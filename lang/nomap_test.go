package lang

import "testing"

// TestClassWithoutMapBlock: a class that maps nothing evaluates to a
// resource that holds only its schemas (it used to panic).
func TestClassWithoutMapBlock(t *testing.T) {
	p, err := Load("nomap.pipe", `pipe "nomap"
source ldif { file = "x.ldif" }
scim { url = "http://127.0.0.1:1/scim/v2" }
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
class people {
  endpoint = Users
}
`, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.NewEvaluator().Eval(&Change{Type: Add, DN: "uid=a,dc=x", Entry: NewEntry("uid=a,dc=x", nil)}, Realtime)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []Op{Create, Update} {
		body, err := res.Resource(op, nil)
		if err != nil || string(body) != `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}` {
			t.Errorf("%v: %s %v", op, body, err)
		}
	}
}
