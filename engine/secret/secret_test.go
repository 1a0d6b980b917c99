package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-TOP-SECRET"
	s := New(value)
	if s.Reveal() != value {
		t.Fatalf("Reveal() = %q, want the value", s.Reveal())
	}
	type holder struct {
		Token Secret
	}
	h := holder{Token: s}
	var outs []string
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h))
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", s, "h", h)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "token", s)
	outs = append(outs, buf.String())
	for _, out := range outs {
		if strings.Contains(out, value) {
			t.Errorf("secret leaked: %s", out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("output %q does not say %s", out, Redacted)
		}
	}
	if New("").IsZero() != true || s.IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestScrubber(t *testing.T) {
	const pw = `p@ss w/"ord"+x`
	tests := []struct {
		name, in string
	}{
		{"plain", "detail: " + pw + " rejected"},
		{"json", `{"password":"p@ss w/\"ord\"+x"}`},
		{"query", "q=" + "p%40ss+w%2F%22ord%22%2Bx"},
		{"path", "/Users/" + "p@ss%20w%2F%22ord%22+x"},
		{"base64", "b=cEBzcyB3LyJvcmQiK3g="},
		{"base64 raw", "b=cEBzcyB3LyJvcmQiK3g"},
	}
	s := NewScrubber(Withheld, pw, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.String(tt.in)
			if !strings.Contains(got, Withheld) {
				t.Errorf("%q: nothing replaced: %q", tt.in, got)
			}
			for _, f := range Forms(pw) {
				if strings.Contains(got, f) {
					t.Errorf("%q: form %q left in %q", tt.in, f, got)
				}
			}
		})
	}
	if (Scrubber{}).String("x") != "x" || NewScrubber(Withheld).Active() {
		t.Error("an empty scrubber changes text")
	}
	// a value inside a longer one: the longer is replaced whole
	if got := NewScrubber("X", "abc", "abcdef").String("abcdef abc"); got != "X X" {
		t.Errorf("overlapping values: %q", got)
	}
}
