package lang_test

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

const readsScript = `pipe "reads"
source ldif { file = "x.ldif" }
scim { url = "https://scim.example.com/v2" }
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
endpoint Groups {
  path    = "/Groups"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
  lookup  = "displayName eq " + scimQuote(first(cn))
}
class admins {
  base     = ["ou=Admins,dc=example,dc=com"]
  when     = hasValue(memberOf, "cn=admins,dc=example,dc=com")
  endpoint = Users
  map { userName = first(uid) }
}
class archive {
  operations = ["create", "delete"]
  when     = hasValue(businessCategory, "archive")
  endpoint = Users
  map { userName = first(uid) }
}
class groups {
  base     = ["ou=Groups,dc=example,dc=com"]
  endpoint = Groups
  map {
    displayName = first(cn)
    members     = ref(member, Users, Groups)
  }
}
class people {
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName       = first(uid)
    name.givenName = first(givenName)
    @resync title  = first(title)
    nickName       = rdnValue(dn)
  }
}
class mixed {
  base     = ["ou=Mixed,dc=example,dc=com"]
  endpoint = first(employeeType) == "team" ? Groups : Users
  map { displayName = first(displayName) }
}
class recent {
  base     = ["ou=Recent,dc=example,dc=com"]
  endpoint = Users
  map { userName = first(uid) + (changeType == "add" ? "" : "") }
}
class whole {
  base     = ["ou=Whole,dc=example,dc=com"]
  endpoint = Users
  map { userName = first($env["uid"]) }
}
`

// TestClassReads: which modifies a class can skip. A class reads what its
// when, endpoint expression, endpoints' lookups and mappings (in the mode)
// read, plus the when of earlier classes that synchronize modifies; Reads is
// true when it cannot tell.
func TestClassReads(t *testing.T) {
	p, err := lang.Load("reads.pipe", readsScript, lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		class   string
		mode    lang.Mode
		changed string // comma-separated
		want    bool
	}{
		{"people", lang.Realtime, "mail", false},
		{"people", lang.Realtime, "description,sn,modifyTimestamp", false},
		{"people", lang.Realtime, "givenName", true},
		{"people", lang.Realtime, "GIVENNAME", true},              // case-insensitive
		{"people", lang.Realtime, "mail,givenName;lang-fr", true}, // options ignored
		{"people", lang.Realtime, "objectClass", true},            // its when
		{"people", lang.Realtime, "uid", true},                    // its endpoint's lookup
		{"people", lang.Realtime, "memberOf", true},               // an earlier class's when
		{"people", lang.Realtime, "businessCategory", false},      // an earlier class that takes no modify
		{"people", lang.Realtime, "title", false},                 // @resync only
		{"people", lang.Resync, "title", true},                    //
		{"people", lang.Realtime, "cn", false},                    // Groups' lookup: not its endpoint
		{"people", lang.Realtime, "", true},                       // the source did not say
		{"people", lang.Realtime, "2.5.4.42", true},               // an OID
		{"groups", lang.Realtime, "member", true},                 // ref(member, …)
		{"groups", lang.Realtime, "cn", true},                     //
		{"groups", lang.Realtime, "memberOf", true},               // admins' when
		{"groups", lang.Realtime, "uid,mail", false},              //
		{"mixed", lang.Realtime, "employeeType", true},            // the endpoint expression
		{"mixed", lang.Realtime, "cn", true},                      // the lookup of either endpoint
		{"mixed", lang.Realtime, "uid", true},                     //
		{"mixed", lang.Realtime, "mail", false},                   //
		{"recent", lang.Realtime, "mail", true},                   // changeType: always
		{"whole", lang.Realtime, "mail", true},                    // $env: always
		{"admins", lang.Realtime, "objectClass", false},           // later classes' when: no
		{"admins", lang.Realtime, "memberOf", true},               //
	}
	for _, tt := range tests {
		t.Run(tt.class+"/"+tt.changed, func(t *testing.T) {
			cl := p.Class(tt.class)
			var changed []string
			if tt.changed != "" {
				changed = strings.Split(tt.changed, ",")
			}
			if got := cl.Reads(tt.mode, changed); got != tt.want {
				attrs, always := cl.ReadAttributes(tt.mode)
				t.Errorf("Reads(%d, %q) = %v, want %v (reads %v, always %v)", tt.mode, changed, got, tt.want, attrs, always)
			}
		})
	}
	attrs, always := p.Class("people").ReadAttributes(lang.Realtime)
	if got := strings.Join(attrs, " "); got != "givenname memberof objectclass uid" || always {
		t.Errorf("people reads %q (always %v)", got, always)
	}
}
