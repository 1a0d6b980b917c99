package source

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

func TestReadLDIF(t *testing.T) {
	changes, dir, err := ReadLDIF(strings.NewReader(`dn: cn=g,dc=x
cn: g
member: uid=a,dc=x

dn: uid=a,dc=x
uid: a

dn: uid=a,dc=x
changetype: modify
replace: uid
uid: b
-
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 || changes[2].Type != lang.Modify || changes[1].Entry.First("uid") != "a" || changes[2].Entry.First("uid") != "b" {
		t.Fatalf("changes: %+v", changes)
	}
	if dir.Len() != 2 || dir.Get("UID=A,DC=X").First("uid") != "b" {
		t.Errorf("the directory is not in its final state")
	}
	for _, bad := range []string{"uid: a\n", "dn: uid=a,dc=x\nchangetype: modify\nincrement: n\nn: 1\n-\n"} {
		if _, _, err := ReadLDIF(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("ReadLDIF(%q): %v, want an error naming the line", bad, err)
		}
	}
}
