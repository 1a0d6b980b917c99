package source

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestSourceURLCredentialsRefused: an LDAP URL that carries credentials is
// refused with a message that names the host but never the password, as
// the SCIM URL check does; a URL that does not parse is shown without
// its userinfo.
func TestSourceURLCredentialsRefused(t *testing.T) {
	tests := []struct{ url, want string }{
		{"ldap://admin:S3cret-pw@ldap.example.com:389", "source url ldap://ldap.example.com:389: the url carries credentials"},
		{"ldaps://cn=admin:S3cret-pw@ldap.example.com", "source url ldaps://ldap.example.com: the url carries credentials"},
		{"ldap://:S3cret-pw@host", "the url carries credentials"},
		{"ldap://admin:S3cret-pw@host:badport", `"ldap://…@host:badport"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := newDialer(lang.SourceConfig{Kind: "syncrepl", URLs: []string{tt.url}}, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestSourceInsecureWarns: insecure = true is warned about as loudly as on
// the SCIM side.
func TestSourceInsecureWarns(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		var buf bytes.Buffer
		_, err := newDialer(lang.SourceConfig{Kind: "syncrepl", URLs: []string{"ldaps://ldap.example.com"}, Insecure: insecure},
			Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "TLS CERTIFICATE VERIFICATION IS OFF"); got != insecure {
			t.Errorf("insecure=%v: log %q", insecure, buf.String())
		}
	}
}
