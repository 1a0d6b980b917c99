package ldif

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchLDIF generates a content LDIF of n person entries.
func benchLDIF(n int) []byte {
	var b bytes.Buffer
	b.WriteString("version: 1\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dn: uid=user%04d,ou=People,dc=example,dc=com\n", i)
		b.WriteString("objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\n")
		fmt.Fprintf(&b, "uid: user%04d\ncn: User %04d\nsn: %04d\ngivenName: User\n", i, i, i)
		fmt.Fprintf(&b, "mail: user%04d@example.com\nemployeeNumber: %d\n", i, 1000+i)
		b.WriteString("displayName:: Sm9zw6kgTcO8bGxlcg==\n")
		b.WriteString("description: A somewhat longer description that is folded across two lin\n es, as ldapsearch would write it.\n")
		fmt.Fprintf(&b, "manager: uid=user%04d,ou=People,dc=example,dc=com\n", i/10)
		fmt.Fprintf(&b, "entryUUID: 00000000-0000-4000-8000-%012d\n\n", i)
	}
	return b.Bytes()
}

func BenchmarkReader(b *testing.B) {
	data := benchLDIF(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data))
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("%d records", n)
		}
	}
}
