package scim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/secret"
)

func TestConfigValidate(t *testing.T) {
	pw := secret.New("hunter2-pw")
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"minimal", Config{URL: "https://scim.example.com/scim/v2"}, ""},
		{"basic", Config{URL: "https://h/scim", Auth: AuthBasic, Username: "u", Password: pw}, ""},
		{"bearer", Config{URL: "http://127.0.0.1:8880/scim/v2", Auth: AuthBearer, Token: pw}, ""},
		{"oauth2", Config{URL: "https://h", Auth: AuthOAuth2, TokenURL: "https://idp/token", ClientID: "c", ClientSecret: pw, Scopes: []string{"scim"}}, ""},
		{"mtls", Config{URL: "https://h", CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"}, ""},
		{"missing url", Config{}, "scim: url is required"},
		{"bad scheme", Config{URL: "ftp://h/scim"}, `scim: url "ftp://h/scim" has scheme "ftp" (want https or http)`},
		{"no scheme", Config{URL: "scim.example.com/v2"}, `scim: url "scim.example.com/v2" has no scheme (want https:// or http://)`},
		{"no host", Config{URL: "https:///scim"}, `scim: url "https:///scim" has no host`},
		{"credentials in url", Config{URL: "https://u:hunter2-pw@h/scim"}, "scim: url must not contain credentials; use the auth settings"},
		{"opaque credentials not echoed", Config{URL: "u:hunter2-pw@h"}, `scim: url (not shown: it contains '@') has scheme "u" (want https or http)`},
		{"query in url", Config{URL: "https://h/scim?x=1"}, `scim: url "https://h/scim?x=1" must not have a query or fragment`},
		{"unparseable url", Config{URL: "https://h/%zz"}, `scim: url is not a valid URL: invalid URL escape "%zz"`},
		{"basic without username", Config{URL: "https://h", Auth: AuthBasic, Password: pw}, "scim: basic auth needs a username"},
		{"basic without password", Config{URL: "https://h", Auth: AuthBasic, Username: "u"}, "scim: basic auth needs a password"},
		{"bearer without token", Config{URL: "https://h", Auth: AuthBearer}, "scim: bearer auth needs a token"},
		{"oauth2 without token url", Config{URL: "https://h", Auth: AuthOAuth2, ClientID: "c", ClientSecret: pw}, "scim: oauth2 auth needs a token url"},
		{"oauth2 bad token url", Config{URL: "https://h", Auth: AuthOAuth2, TokenURL: "idp/token", ClientID: "c", ClientSecret: pw}, `scim: token url "idp/token" has no scheme (want https:// or http://)`},
		{"oauth2 without client id", Config{URL: "https://h", Auth: AuthOAuth2, TokenURL: "https://idp/token", ClientSecret: pw}, "scim: oauth2 auth needs a client id"},
		{"oauth2 without secret", Config{URL: "https://h", Auth: AuthOAuth2, TokenURL: "https://idp/token", ClientID: "c"}, "scim: oauth2 auth needs a client secret"},
		{"unknown auth", Config{URL: "https://h", Auth: "kerberos"}, `scim: unknown auth type "kerberos" (want none, basic, bearer or oauth2)`},
		{"cert without key", Config{URL: "https://h", CertFile: "c.pem"}, "scim: client certificate given without its key file"},
		{"key without cert", Config{URL: "https://h", KeyFile: "k.pem"}, "scim: client key file given without its certificate"},
		{"insecure with ca", Config{URL: "https://h", Insecure: true, CAFile: "ca.pem"}, "scim: insecure and a CA file exclude each other: the CA file would be ignored"},
		{"negative timeout", Config{URL: "https://h", Timeout: -time.Second}, "scim: timeout -1s is negative"},
		{"negative attempts", Config{URL: "https://h", MaxAttempts: -1}, "scim: max attempts -1 is negative"},
		{"negative conns", Config{URL: "https://h", MaxConns: -2}, "scim: max connections -2 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q\nwant %q", got, tt.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("the error shows the secret: %s", got)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: "https://h"}.withDefaults()
	if c.Timeout != 10*time.Second || c.MaxAttempts != 5 || c.MaxConns != 8 || c.Auth != AuthNone {
		t.Errorf("defaults: %+v", c)
	}
	if c.UserAgent != "scimsync/"+Version() {
		t.Errorf("UserAgent = %q", c.UserAgent)
	}
}

func TestConfigPrintsNoSecret(t *testing.T) {
	c := Config{URL: "https://h", Auth: AuthOAuth2, Password: secret.New("pw-one-1"), Token: secret.New("tok-two-2"),
		ClientSecret: secret.New("cs-three-3")}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		for _, v := range []string{"pw-one-1", "tok-two-2", "cs-three-3"} {
			if strings.Contains(s, v) {
				t.Errorf("printed Config shows %q: %s", v, s)
			}
		}
	}
}
