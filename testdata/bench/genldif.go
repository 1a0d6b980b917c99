//go:build ignore

// genldif writes a generated directory as LDIF on stdout, for the resync
// benchmark (testdata/bench/resync.sh): ou=People and ou=Groups under BASE,
// N inetOrgPerson users uid=bench-u000001… with the attributes the shipped
// pipes map, and G groupOfNames of M members each (the first G*M users,
// each in at most one group).
//
//	go run testdata/bench/genldif.go -n 10000 -groups 20 -members 100 > users.ldif
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	n := flag.Int("n", 10000, "users")
	groups := flag.Int("groups", 20, "groups")
	members := flag.Int("members", 100, "members per group")
	base := flag.String("base", "dc=example,dc=com", "suffix")
	flag.Parse()
	if *groups**members > *n {
		fmt.Fprintln(os.Stderr, "genldif: groups*members must be at most n")
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	for _, ou := range []string{"People", "Groups"} {
		fmt.Fprintf(w, "dn: ou=%s,%s\nobjectClass: top\nobjectClass: organizationalUnit\nou: %s\n\n", ou, *base, ou)
	}
	uid := func(i int) string { return fmt.Sprintf("bench-u%06d", i) }
	for i := 1; i <= *n; i++ {
		u := uid(i)
		fmt.Fprintf(w, "dn: uid=%s,ou=People,%s\n", u, *base)
		fmt.Fprint(w, "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\n")
		fmt.Fprintf(w, "uid: %s\ncn: Bench User %d\nsn: User%d\ngivenName: Bench\ndisplayName: Bench User %d\n", u, i, i, i)
		fmt.Fprintf(w, "mail: %s@Example.COM\ntitle: Engineer %d\ntelephoneNumber: +1 555 %07d\nemployeeNumber: %d\n\n", u, i%50, i, i)
	}
	for g := 0; g < *groups; g++ {
		fmt.Fprintf(w, "dn: cn=bench-g%03d,ou=Groups,%s\nobjectClass: top\nobjectClass: groupOfNames\ncn: bench-g%03d\n", g, *base, g)
		for m := 0; m < *members; m++ {
			fmt.Fprintf(w, "member: uid=%s,ou=People,%s\n", uid(g**members+m+1), *base)
		}
		fmt.Fprintln(w)
	}
}
