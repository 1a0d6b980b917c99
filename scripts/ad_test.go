package scripts_test

import (
	"encoding/binary"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// sid is the binary objectSid S-1-5-21-1-2-3-rid (or S-1-5-32-rid, a
// BUILTIN alias, when domain is false), as AD stores it.
func sid(domain bool, rid uint32) string {
	subs := []uint32{21, 1, 2, 3, rid}
	if !domain {
		subs = []uint32{32, rid}
	}
	b := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, 5}
	for _, s := range subs {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return string(b)
}

// TestADPipeLeavesBuiltinsOut classifies entries shaped like a domain's
// own objects and like ordinary people and groups with the shipped
// scripts/ad-to-scim.pipe, LDAP_BASE set to the whole domain: each rule of
// its `when` (isCriticalSystemObject, a well-known relative identifier, the
// built-in containers, computers) keeps its objects out on its own, and
// ordinary users and groups, even in CN=Users, are provisioned.
// TestADBuiltinsStayOut checks the same against a fresh Samba domain.
func TestADPipeLeavesBuiltinsOut(t *testing.T) {
	env := map[string]string{"LDAP_BASE": "DC=example,DC=com"}
	p, err := lang.LoadFile("ad-to-scim.pipe", lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	user := []string{"top", "person", "organizationalPerson", "user"}
	group := []string{"top", "group"}
	for _, tc := range []struct {
		name, dn string
		classes  []string
		sid      string
		critical string // isCriticalSystemObject, "" for none
		want     string // the class, "" for out of scope
	}{
		{"Administrator", "CN=Administrator,CN=Users,DC=example,DC=com", user, sid(true, 500), "TRUE", ""},
		{"krbtgt", "CN=krbtgt,CN=Users,DC=example,DC=com", user, sid(true, 502), "TRUE", ""},
		{"Domain Admins", "CN=Domain Admins,CN=Users,DC=example,DC=com", group, sid(true, 512), "TRUE", ""},
		{"BUILTIN Administrators", "CN=Administrators,CN=Builtin,DC=example,DC=com", group, sid(false, 544), "TRUE", ""},
		{"critical only", "CN=svc,OU=Staff,DC=example,DC=com", user, sid(true, 1500), "TRUE", ""},
		{"well-known RID only", "CN=Domain Users,CN=Users,DC=example,DC=com", group, sid(true, 513), "", ""},
		{"in CN=Builtin only", "CN=x,CN=Builtin,DC=example,DC=com", group, sid(true, 1600), "FALSE", ""},
		{"deep in CN=System", "CN=x,CN=Policies,CN=System,DC=example,DC=com", user, sid(true, 1601), "", ""},
		{"in OU=Domain Controllers", "CN=y,OU=Domain Controllers,DC=example,DC=com", user, sid(true, 1602), "", ""},
		{"computer", "CN=PC1,OU=Staff,DC=example,DC=com", append(user, "computer"), sid(true, 1603), "", ""},
		{"person in CN=Users", "CN=Ann,CN=Users,DC=example,DC=com", user, sid(true, 1104), "", "users"},
		{"person not critical", "CN=Bob,OU=Staff,DC=example,DC=com", user, sid(true, 1105), "FALSE", "users"},
		{"OU named like a built-in, deeper", "CN=Cy,OU=Domain Controllers,OU=Staff,DC=example,DC=com", user, sid(true, 1106), "", "users"},
		{"group", "CN=Team,OU=Groups,DC=example,DC=com", group, sid(true, 1107), "", "groups"},
		// not critical in Windows AD either: the base keeps such groups out
		{"DnsAdmins", "CN=DnsAdmins,CN=Users,DC=example,DC=com", group, sid(true, 1101), "", "groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attrs := []lang.Attr{{Name: "objectClass", Values: tc.classes}, {Name: "objectSid", Values: []string{tc.sid}},
				{Name: "objectGUID", Values: []string{"0123456789abcdef"}}, {Name: "cn", Values: []string{"x"}},
				{Name: "sAMAccountName", Values: []string{"x"}}, {Name: "userAccountControl", Values: []string{"512"}}}
			if tc.critical != "" {
				attrs = append(attrs, lang.Attr{Name: "isCriticalSystemObject", Values: []string{tc.critical}})
			}
			res, err := p.NewEvaluator().Eval(&lang.Change{Type: lang.Add, DN: tc.dn, Entry: lang.NewEntry(tc.dn, attrs)}, lang.Resync)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if !res.OutOfScope {
				got = res.Class.Name
			}
			if got != tc.want {
				t.Errorf("class %q, want %q", got, tc.want)
			}
		})
	}
}
