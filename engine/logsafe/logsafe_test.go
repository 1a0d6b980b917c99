package logsafe_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// hostile holds what an LDAP value may carry to a terminal: an ANSI
// sequence that clears the screen, BEL, an 8-bit CSI (U+009B), a
// right-to-left override, a byte that is not UTF-8, and a fake log line.
const hostile = "a\x1b[2Jb\x07c\u009b31md\u202ee\xff\nlevel=ERROR msg=forged"

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain ASCII", "plain ASCII"},
		{"Zoë Ørsted 山田", "Zoë Ørsted 山田"},
		{"a\x1b[31mred", `a\u001b[31mred`},
		{"bell\x07", `bell\u0007`},
		{"csi\u009b2J", `csi\u009b2J`},
		{"del\x7f", `del\u007f`},
		{"rlo\u202eevil", `rlo\u202eevil`},
		{"isolate\u2066x\u2069", `isolate\u2066x\u2069`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"cut\xe2\x82", `cut\xe2\x82`},
		{"line\nbreak\ttab\r", `line\u000abreak\u0009tab\u000d`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := logsafe.Escape(tt.in); got != tt.want {
				t.Errorf("Escape = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCap(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abc", 10, "0123456789…(+3 bytes)"},
		{"ééééé", 3, "é…(+8 bytes)"}, // never inside a rune
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := logsafe.Cap(tt.in, tt.max); got != tt.want {
				t.Errorf("Cap = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWriter: a stream keeps its lines and tabs, escapes the rest, joins
// a rune split between writes, and leaves JSON valid with the same value.
func TestWriter(t *testing.T) {
	var out bytes.Buffer
	w := logsafe.NewWriter(&out)
	chunks := []string{"line one\tok\n", hostile[:3], hostile[3:], "\n", "é"[:1], "é"[1:], "\n"}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	want := "line one\tok\n" + `a\u001b[2Jb\u0007c\u009b31md\u202ee\xff` + "\nlevel=ERROR msg=forged\né\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}

	out.Reset()
	v := map[string]string{"displayName": "x\u009b31m\u202ey"}
	j, _ := json.Marshal(v)
	w.Write(append(j, '\n'))
	var back map[string]string
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back["displayName"] != v["displayName"] {
		t.Errorf("JSON through the writer: %s: %v %q", out.Bytes(), err, back)
	}
	if strings.ContainsRune(out.String(), '\u009b') {
		t.Errorf("raw CSI in %q", out.String())
	}
}

// TestHandler: whatever handler it wraps, a line keeps values to MaxValue
// and messages to MaxMessage bytes, and no control character gets through
// raw: a 100 KB uid makes a line of a few KB, a forged line stays in its
// line.
func TestHandler(t *testing.T) {
	huge := strings.Repeat("u", 100<<10)
	for _, name := range []string{"text", "json"} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&out, nil)
			if name == "json" {
				h = slog.NewJSONHandler(&out, nil)
			}
			log := slog.New(logsafe.NewHandler(h)).With("pipe", "p\x1b]0;title\x07")
			log.Error("failed "+huge+hostile,
				"dn", "uid="+huge+",dc=x",
				"err", errors.New(hostile+huge),
				"values", []string{hostile, huge, huge},
				slog.Group("g", "v", hostile))
			line := out.String()
			if len(line) > logsafe.MaxMessage+6*logsafe.MaxValue {
				t.Errorf("line of %d bytes", len(line))
			}
			if strings.Count(line, "\n") != 1 {
				t.Errorf("%d lines", strings.Count(line, "\n"))
			}
			for _, c := range []string{"\x1b", "\x07", "\u009b", "\u202e", "\xff"} {
				if strings.Contains(line, c) {
					t.Errorf("raw %q in the line", c)
				}
			}
			if !strings.Contains(line, "bytes)") {
				t.Errorf("the cut is not said: %.300s", line)
			}
		})
	}
}

// TestHandlerSafeLine: a line with nothing to escape or cap is written as
// the wrapped handler writes it (Handle passes the record itself); one
// value to escape or convert anywhere in it makes it go through the copy.
func TestHandlerSafeLine(t *testing.T) {
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	tests := []struct {
		name string
		args []any
		same bool
	}{
		{"applied", []any{"op", "modify", "dn", "uid=u1,ou=People,dc=example,dc=com", "attrs", []string{"title"},
			"patchOps", 1, "ms", int64(3), "took", time.Second, slog.Group("g", "ok", true)}, true},
		{"escaped value", []any{"dn", "uid=u\x1b[2J,dc=x"}, false},
		{"escaped list element", []any{"attrs", []string{"title", "x\u202e"}}, false},
		{"long list", []any{"attrs", []string{strings.Repeat("a", logsafe.MaxValue), "b"}}, false},
		{"escaped key", []any{"k\x07", "v"}, false},
		{"error", []any{"err", errors.New("boom")}, true}, // converted to its text, which prints the same
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var plain, safe bytes.Buffer
			slog.New(slog.NewJSONHandler(&plain, noTime)).Info("applied", tt.args...)
			slog.New(logsafe.NewHandler(slog.NewJSONHandler(&safe, noTime))).Info("applied", tt.args...)
			if (plain.String() == safe.String()) != tt.same {
				t.Errorf("same line: %v, want %v\nplain %s safe  %s", !tt.same, tt.same, plain.String(), safe.String())
			}
		})
	}
}

// BenchmarkHandler: the line run writes for each change it applies,
// through Handler and a JSON handler into a Writer.
func BenchmarkHandler(b *testing.B) {
	log := slog.New(logsafe.NewHandler(slog.NewJSONHandler(logsafe.NewWriter(io.Discard), nil)))
	b.ReportAllocs()
	for b.Loop() {
		log.Info("updated", "op", "modify", "dn", "uid=bench-u000001,ou=People,dc=example,dc=com", "class", "people",
			"endpoint", "Users", "id", "00000001-b12f-479e-bc86-9a81a26c618c", "attrs", []string{"title"}, "patchOps", 1,
			"attempts", 1, "ms", int64(3))
	}
}
