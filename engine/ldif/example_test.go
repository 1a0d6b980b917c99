package ldif_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/scimsync/scimsync/engine/ldif"
)

func ExampleReader() {
	const in = `version: 1

# A content record.
dn: uid=jmuller,ou=People,dc=example,dc=com
objectClass: inetOrgPerson
cn:: Sm9zw6kgTcO8bGxlcg==
mail: jose.muller@example.com

dn: uid=jmuller,ou=People,dc=example,dc=com
changetype: modify
replace: mail
mail: jose@example.com
-

dn: uid=nobody,ou=People,dc=example,dc=com
changetype: delete
cn: oops
`
	r := ldif.NewReader(strings.NewReader(in))
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var e *ldif.Error
		if errors.As(err, &e) {
			fmt.Println("error:", e)
			continue // the reader resumes at the next record
		}
		if err != nil {
			panic(err)
		}
		if rec.IsChange() {
			fmt.Println(rec.Line, rec.ChangeType, rec.DN, rec.Mods)
		} else {
			fmt.Println(rec.Line, rec.DN, rec.Attrs)
		}
	}
	fmt.Println("version", r.Version())
	// Output:
	// 4 uid=jmuller,ou=People,dc=example,dc=com [{objectClass [inetOrgPerson]} {cn [José Müller]} {mail [jose.muller@example.com]}]
	// 9 modify uid=jmuller,ou=People,dc=example,dc=com [{replace mail [jose@example.com]}]
	// error: line 17:1: content after changetype: delete
	// version 1
}
