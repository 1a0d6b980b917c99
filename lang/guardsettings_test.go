package lang

import (
	"strings"
	"testing"
	"time"
)

// TestDeleteGuardSettings: the scim block's mass-delete guard settings are
// read, and out-of-range values are errors at their place in the script.
func TestDeleteGuardSettings(t *testing.T) {
	const head = "pipe \"t\"\nsource ldif { file = \"x.ldif\" }\nscim {\n  url = \"http://127.0.0.1/scim\"\n"
	const tail = "}\nendpoint Users { path = \"/Users\"\n schemas = [\"urn:ietf:params:scim:schemas:core:2.0:User\"] }\n" +
		"class c { endpoint = Users\n map { userName = first(uid) } }\n"
	tests := []struct {
		settings string
		max, pct int
		window   time.Duration
		err      string
	}{
		{"", 0, 0, 0, ""},
		{"  maxDeletes = 50\n  maxDeletesPercent = 10\n  deleteWindow = \"1h\"\n", 50, 10, time.Hour, ""},
		{"  maxDeletes = 0\n", 0, 0, 0, "test.pipe:5:16: maxDeletes: want 1 or more deletes"},
		{"  maxDeletesPercent = 101\n", 0, 0, 0, "test.pipe:5:23: maxDeletesPercent: want a whole percentage from 1 to 100"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.settings), func(t *testing.T) {
			p, err := Load("test.pipe", head+tt.settings+tail, LoadOptions{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MaxDeletes != tt.max || p.MaxDeletesPercent != tt.pct || p.DeleteWindow != tt.window {
				t.Errorf("got %d %d %v", p.MaxDeletes, p.MaxDeletesPercent, p.DeleteWindow)
			}
		})
	}
}
