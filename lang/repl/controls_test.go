package repl

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestWriteLDIFControls: a value with a control character that a terminal
// acts on (ESC, BEL, an 8-bit CSI, a right-to-left override) is written
// base64 ("::"), as RFC 2849 requires for C0 and as the REPL now does for
// C1 and bidi marks too; the comment lines escape them. Before, C1 and
// bidi values were written as they are, straight to the terminal.
func TestWriteLDIFControls(t *testing.T) {
	values := []string{"a\x1b[2Jb", "bell\x07", "csi\u009b31m", "rlo\u202eevil", "Zoë"}
	ch := &lang.Change{Type: lang.ModRDN, DN: "uid=b,dc=x", OldDN: "uid=a\x1b[31m,dc=x", Changed: []string{"cn\u009b"},
		Entry: lang.NewEntry("uid=b,dc=x", []lang.Attr{{Name: "cn", Values: values}})}
	var b bytes.Buffer
	writeLDIF(&b, ch)
	want := "# renamed from uid=a\\u001b[31m,dc=x\n# changed: cn\\u009b\ndn: uid=b,dc=x\n"
	for _, v := range values[:4] {
		want += "cn:: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n"
	}
	want += "cn: Zoë\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
