package scim

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkPatchDiff measures Diff and PatchBodies for the update of a
// typical user and of a large group (figures in BENCHMARKS.md).
func BenchmarkPatchDiff(b *testing.B) {
	b.Run("user-10-attrs", func(b *testing.B) {
		current := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"id":"2819c223-7f76-453a-919d-413861904646","meta":{"resourceType":"User","version":"W/\"3\""},
			"userName":"bjensen","displayName":"Babs Jensen","title":"Tour Guide","active":true,
			"name":{"givenName":"Barbara","familyName":"Jensen"},
			"emails":[{"type":"work","value":"bjensen@example.com","primary":true},{"type":"home","value":"babs@jensen.org"}],
			"phoneNumbers":[{"type":"work","value":"555-555-5555"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations"}}`)
		desired := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"userName":"bjensen","displayName":"Babs Jensen","title":"Senior Tour Guide","active":true,
			"name":{"givenName":"Barbara","familyName":"Jensen"},
			"emails":[{"type":"work","value":"bjensen@example.com","primary":true}],
			"phoneNumbers":[{"type":"work","value":"555-555-0000"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations"}}`)
		managed := parsePaths(b, []string{"userName", "displayName", "title", "active", "name.givenName", "name.familyName",
			`emails[type eq "work"].value`, `phoneNumbers[type eq "work"].value`,
			URNEnterpriseUser + ":employeeNumber", URNEnterpriseUser + ":department"})
		benchDiff(b, current, desired, managed, newOpts(b, "User", 0), 2)
	})
	b.Run("group-10000-members-1-changed", func(b *testing.B) {
		const n = 10000
		var cur, des strings.Builder
		cur.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":"All staff","members":[`)
		des.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"All staff","members":[`)
		for i := range n {
			id := fmt.Sprintf("%08x-7f76-453a-919d-413861904646", i)
			if i > 0 {
				cur.WriteByte(',')
				des.WriteByte(',')
			}
			fmt.Fprintf(&cur, `{"value":%q,"type":"User","$ref":"https://scim.example.com/v2/Users/%s"}`, id, id)
			fmt.Fprintf(&des, `{"value":%q,"type":"User"}`, id)
		}
		cur.WriteString(`]}`)
		des.WriteString(`,{"value":"ffffffff-7f76-453a-919d-413861904646","type":"User"}]}`) // one joiner
		managed := parsePaths(b, []string{"displayName", "members"})
		benchDiff(b, []byte(cur.String()), []byte(des.String()), managed, newOpts(b, "Group", 0), 1)
	})
}

func benchDiff(b *testing.B, current, desired []byte, managed []Path, opts DiffOptions, wantOps int) {
	ops, err := Diff(current, desired, managed, opts)
	if err != nil || len(ops) != wantOps {
		b.Fatalf("Diff gave %d operations (%v), want %d:\n%s", len(ops), err, wantOps, formatOps(ops))
	}
	b.SetBytes(int64(len(current) + len(desired)))
	b.ReportAllocs()
	for b.Loop() {
		ops, _ := Diff(current, desired, managed, opts)
		if len(PatchBodies(ops, opts.MaxOpsPerRequest)) != 1 {
			b.Fatal("want one body")
		}
	}
}
