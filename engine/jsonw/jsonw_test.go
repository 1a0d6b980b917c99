package jsonw

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\tnl\ncr\rbs\bff\f", `"tab\tnl\ncr\rbs\bff\f"`},
		{"\x00\x1f\x7f", `"\u0000\u001f\u007f"`},
		{"Zoë <&>", `"Zoë <&>"`},
		{"line\u2028para\u2029", `"line\u2028para\u2029"`},
		{"bad\xffbyte", `"bad\ufffdbyte"`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzAppendString: the output is valid JSON that decodes to the input
// (with invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\xff\u2028", "José"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %s: not JSON: %v", s, out, err)
		}
		want := []rune{}
		for _, r := range s {
			want = append(want, r)
		}
		if back != string(want) || !utf8.ValidString(back) {
			t.Fatalf("%q -> %s -> %q", s, out, back)
		}
	})
}
