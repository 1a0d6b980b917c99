package scim

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/scimsync/scimsync/engine/secret"
)

// AuthType selects how a Client authenticates to the SCIM service provider.
type AuthType string

// The supported AuthType values.
const (
	AuthNone   AuthType = "none"   // no Authorization header
	AuthBasic  AuthType = "basic"  // RFC 7617 HTTP Basic with Username and Password
	AuthBearer AuthType = "bearer" // RFC 6750 static bearer Token
	AuthOAuth2 AuthType = "oauth2" // RFC 6749 §4.4 client credentials against TokenURL
)

// Defaults applied by NewClient to zero Config fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 5
	DefaultMaxConns    = 8
)

// Config describes one SCIM service provider and how to reach it. The zero values of
// Timeout, MaxAttempts and MaxConns mean the defaults above.
type Config struct {
	URL          string // base URL, e.g. https://scim.example.com/scim/v2; endpoint paths are appended
	Auth         AuthType
	Username     string        // AuthBasic
	Password     secret.Secret // AuthBasic
	Token        secret.Secret // AuthBearer
	TokenURL     string        // AuthOAuth2 token endpoint
	ClientID     string        // AuthOAuth2
	ClientSecret secret.Secret // AuthOAuth2
	Scopes       []string      // AuthOAuth2, optional

	CAFile   string // PEM bundle trusted instead of the system roots, optional
	CertFile string // PEM client certificate for mTLS, optional (needs KeyFile)
	KeyFile  string // PEM private key of CertFile
	Insecure bool   // skip TLS certificate verification; NewClient logs a loud warning

	Timeout     time.Duration // per attempt: connect, send, and read the whole response (default 10s)
	MaxAttempts int           // attempts per request, the first included (default 5)
	MaxConns    int           // bound of the per-host connection pool (default 8)
	UserAgent   string        // default "scimsync/<version>"
	// Rate caps the requests per second to the service, over every goroutine
	// that shares the Client (0: no cap). Whatever the cap, a 429 slows every
	// request of the Client down together (see throttle).
	Rate float64
}

// Validate reports the first problem that would keep the configuration from working, in
// terms a person editing a pipe script understands. It never includes secret values.
func (c *Config) Validate() error {
	if c.URL == "" {
		return errors.New("scim: url is required")
	}
	if err := checkURL("url", c.URL); err != nil {
		return err
	}
	switch c.Auth {
	case AuthNone, "":
	case AuthBasic:
		if c.Username == "" {
			return errors.New("scim: basic auth needs a username")
		}
		if c.Password.IsZero() {
			return errors.New("scim: basic auth needs a password")
		}
	case AuthBearer:
		if c.Token.IsZero() {
			return errors.New("scim: bearer auth needs a token")
		}
	case AuthOAuth2:
		if c.TokenURL == "" {
			return errors.New("scim: oauth2 auth needs a token url")
		}
		if err := checkURL("token url", c.TokenURL); err != nil {
			return err
		}
		if c.ClientID == "" {
			return errors.New("scim: oauth2 auth needs a client id")
		}
		if c.ClientSecret.IsZero() {
			return errors.New("scim: oauth2 auth needs a client secret")
		}
	default:
		return fmt.Errorf("scim: unknown auth type %q (want none, basic, bearer or oauth2)", string(c.Auth))
	}
	if c.CertFile != "" && c.KeyFile == "" {
		return errors.New("scim: client certificate given without its key file")
	}
	if c.KeyFile != "" && c.CertFile == "" {
		return errors.New("scim: client key file given without its certificate")
	}
	if c.Insecure && c.CAFile != "" {
		return errors.New("scim: insecure and a CA file exclude each other: the CA file would be ignored")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("scim: timeout %s is negative", c.Timeout)
	}
	if c.MaxAttempts < 0 {
		return fmt.Errorf("scim: max attempts %d is negative", c.MaxAttempts)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("scim: max connections %d is negative", c.MaxConns)
	}
	if c.Rate < 0 {
		return fmt.Errorf("scim: rate %g is negative", c.Rate)
	}
	return nil
}

// checkURL accepts absolute http and https URLs without credentials, query or fragment.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("scim: %s is not a valid URL: %v", what, err)
	}
	if u.User != nil {
		return fmt.Errorf("scim: %s must not contain credentials; use the auth settings", what)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return fmt.Errorf("scim: %s %s has no scheme (want https:// or http://)", what, showURL(raw))
	default:
		return fmt.Errorf("scim: %s %s has scheme %q (want https or http)", what, showURL(raw), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("scim: %s %s has no host", what, showURL(raw))
	}
	if what == "url" && (u.RawQuery != "" || u.Fragment != "") {
		return fmt.Errorf("scim: %s %s must not have a query or fragment", what, showURL(raw))
	}
	return nil
}

// showURL quotes raw for an error message unless it might hold credentials ("user:pw@host").
func showURL(raw string) string {
	if strings.Contains(raw, "@") {
		return "(not shown: it contains '@')"
	}
	return fmt.Sprintf("%q", raw)
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Auth == "" {
		c.Auth = AuthNone
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.UserAgent == "" {
		c.UserAgent = "scimsync/" + Version()
	}
	return c
}
