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
