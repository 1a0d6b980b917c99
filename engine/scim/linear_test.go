package scim

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wideObject is a JSON object of n keys k0…, their values v0…, with the
// value of key `changed` (if ≥ 0) set to "new", and extra appended as is.
func wideObject(n, changed int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		v := fmt.Sprintf("v%d", i)
		if i == changed {
			v = "new"
		}
		fmt.Fprintf(&b, `"k%d":%q`, i, v)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

// TestDiffLinearInWideObjects: objects of 100 000 keys where the diff reads
// them (a complex attribute, an element of a multi-valued one, a nested
// object compared whole, an element without value, the duplicate-key
// check) diff correctly. Each once found every key by scanning the object
// (or sorted by insertion), 10^10 steps for one such document: minutes of
// CPU from one hostile answer. Read once into an index (fold.go), they take
// a fraction of a second; no figure is asserted, a quadratic walk would
// simply not end within the test's timeout.
func TestDiffLinearInWideObjects(t *testing.T) {
	const n = 100000
	user := `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u"`
	tests := []struct {
		name             string
		managed          []string
		current, desired string
		wantOps          int
		wantErr          bool
	}{
		{
			name:    "complex attribute of unknown schema",
			managed: []string{"x"},
			current: `{` + user + `,"x":` + wideObject(n, -1, "") + `}`,
			desired: `{` + user + `,"x":` + wideObject(n, n-1, "") + `}`,
			wantOps: 1,
		},
		{
			name:    "nested object compared whole",
			managed: []string{"x"},
			current: `{` + user + `,"x":{"big":` + wideObject(n, -1, "") + `}}`,
			desired: `{` + user + `,"x":{"big":` + wideObject(n, n-1, "") + `}}`,
			wantOps: 1,
		},
		{
			name:    "an element of a multi-valued attribute",
			managed: []string{"emails"},
			current: `{` + user + `,"emails":[` + wideObject(n, -1, `,"value":"a@x","type":"work"`) + `]}`,
			desired: `{` + user + `,"emails":[` + wideObject(n, n-1, `,"value":"a@x","type":"work"`) + `]}`,
			wantOps: 2, // remove the element, add it changed
		},
		{
			name:    "an element without value",
			managed: []string{"y"},
			current: `{` + user + `,"y":[` + wideObject(n, -1, "") + `]}`,
			desired: `{` + user + `,"y":[` + wideObject(n, n-1, "") + `]}`,
			wantOps: 2,
		},
		{
			name:    "a repeated key at the end",
			managed: []string{"x"},
			current: `{` + user + `,"x":` + wideObject(n, -1, `,"K5":"again"`) + `}`,
			desired: `{` + user + `,"x":{}}`,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Diff([]byte(tt.current), []byte(tt.desired), parsePaths(t, tt.managed), newOpts(t, "User", 0))
			if tt.wantErr {
				var de *DuplicateKeyError
				if !errors.As(err, &de) || de.Keys != [2]string{"k5", "K5"} {
					t.Fatalf("Diff: %v, want the repeated key k5", err)
				}
				return
			}
			if err != nil || len(ops) != tt.wantOps {
				t.Fatalf("Diff gave %d operations (%v), want %d", len(ops), err, tt.wantOps)
			}
		})
	}
}

// TestFoldKey: foldKey equates exactly the strings strings.EqualFold does,
// so that an object read through its index finds what getFold finds.
func TestFoldKey(t *testing.T) {
	words := []string{"userName", "USERNAME", "username", "k", "K", "\u212a", "s", "S", "\u017f", "ß", "ẞ", "Σ", "σ", "ς",
		"émail", "ÉMAIL", "\xff", "\xfe", "", "a\xffb", "A\xfeB"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q) == foldKey(%q): %v, EqualFold: %v", a, b, got, want)
			}
		}
	}
}
