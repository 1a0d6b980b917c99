package ldif

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader checks that no input makes the Reader panic or loop: Next
// must reach io.EOF or a final error within a number of calls bounded by
// the number of lines.
func FuzzReader(f *testing.F) {
	for _, tc := range readerCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		r := NewReader(bytes.NewReader(data))
		r.maxLine = 1 << 10
		var last error
		for i := 0; i <= lines+1; i++ {
			rec, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if rec != nil {
					t.Fatalf("record and error %v", err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not *Error", err, err)
				}
				if e.Line < 1 || e.Line > lines || e.Column < 0 {
					t.Fatalf("error %v outside the input (%d lines)", err, lines)
				}
				if err == last {
					return // final error
				}
				last = err
				continue
			}
			if rec == nil {
				t.Fatal("nil record without error")
			}
			if rec.Line < 1 || rec.Line > lines {
				t.Fatalf("record line %d outside the input (%d lines)", rec.Line, lines)
			}
			if rec.IsChange() != (rec.ChangeType != "") {
				t.Fatal("IsChange disagrees with ChangeType")
			}
			switch rec.ChangeType {
			case "", "add", "delete", "modify", "modrdn":
			default:
				t.Fatalf("changetype %q", rec.ChangeType)
			}
		}
		t.Fatalf("Next did not finish within %d calls", lines+2)
	})
}
