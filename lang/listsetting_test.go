package lang

import (
	"strings"
	"testing"
)

// TestListSetting: the scim block's list setting (resync lists the
// endpoints unless it is false) is read, and a value that is not a bool
// is an error at its place in the script.
func TestListSetting(t *testing.T) {
	const head = "pipe \"t\"\nsource ldif { file = \"x.ldif\" }\nscim {\n  url = \"http://127.0.0.1/scim\"\n"
	const tail = "}\nendpoint Users { path = \"/Users\"\n schemas = [\"urn:ietf:params:scim:schemas:core:2.0:User\"] }\n" +
		"class c { endpoint = Users\n map { userName = first(uid) } }\n"
	tests := []struct {
		settings string
		noList   bool
		err      string
	}{
		{"", false, ""},
		{"  list = true\n", false, ""},
		{"  list = false\n", true, ""},
		{"  list = \"no\"\n", false, "test.pipe:5:10:"},
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
			if p.NoList != tt.noList {
				t.Errorf("NoList %v, want %v", p.NoList, tt.noList)
			}
		})
	}
}
