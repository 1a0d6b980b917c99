package lang

import (
	"strings"
	"testing"
)

// TestBulkSettings: the scim block's Bulk settings are read (no bulk
// setting is "auto": Bulk where the service advertises it), an unknown
// mode is refused with the modes listed, and out-of-range limits are
// errors at their place in the script.
func TestBulkSettings(t *testing.T) {
	const head = "pipe \"t\"\nsource ldif { file = \"x.ldif\" }\nscim {\n  url = \"http://127.0.0.1/scim\"\n"
	const tail = "}\nendpoint Users { path = \"/Users\"\n schemas = [\"urn:ietf:params:scim:schemas:core:2.0:User\"] }\n" +
		"class c { endpoint = Users\n map { userName = first(uid) } }\n"
	tests := []struct {
		settings     string
		mode         string
		ops, payload int
		err          string
	}{
		{"", "auto", 0, 0, ""},
		{"  bulk = \"auto\"\n", "auto", 0, 0, ""},
		{"  bulk = \"on\"\n  bulkMaxOperations = 50\n  bulkMaxPayload = 65536\n", "on", 50, 65536, ""},
		{"  bulk = \"off\"\n", "off", 0, 0, ""},
		{"  bulk = \"yes\"\n", "", 0, 0, "test.pipe:5:10:"},
		{"  bulkMaxOperations = 0\n", "", 0, 0, "test.pipe:5:23: bulkMaxOperations: want 1 or more operations per Bulk request"},
		{"  bulkMaxPayload = 100\n", "", 0, 0, "test.pipe:5:20: bulkMaxPayload: want the most bytes one Bulk request may hold, 1024 or more"},
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
			if p.Bulk != tt.mode || p.BulkMaxOperations != tt.ops || p.BulkMaxPayload != tt.payload {
				t.Errorf("got %q %d %d", p.Bulk, p.BulkMaxOperations, p.BulkMaxPayload)
			}
		})
	}
}
