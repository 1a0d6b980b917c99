package scim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// The scimType values of RFC 7644 §3.12, table 9.
const (
	ScimTypeInvalidFilter = "invalidFilter"
	ScimTypeTooMany       = "tooMany"
	ScimTypeUniqueness    = "uniqueness"
	ScimTypeMutability    = "mutability"
	ScimTypeInvalidSyntax = "invalidSyntax"
	ScimTypeInvalidPath   = "invalidPath"
	ScimTypeNoTarget      = "noTarget"
	ScimTypeInvalidValue  = "invalidValue"
	ScimTypeInvalidVers   = "invalidVers"
	ScimTypeSensitive     = "sensitive"
)

// maxDetail bounds the excerpt of a non-SCIM error body kept as Detail, in runes.
const maxDetail = 200

// Error is a non-2xx answer of a SCIM service provider: an RFC 7644 §3.12 error response, or
// whatever a proxy or load balancer in front of it returned (then Detail is a short,
// sanitized excerpt of the body). Decide on Status and ScimType, never on the message.
type Error struct {
	Status     int           // HTTP status code
	ScimType   string        // RFC 7644 §3.12 scimType, "" when absent
	Detail     string        // human-readable detail; secrets removed
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
	Method     string        // request method
	Path       string        // request path relative to the base URL (token URL for token requests)
}

// Error renders "scim: POST /Users: 409 Conflict (uniqueness): userName ... is already taken".
func (e *Error) Error() string { return "scim: " + e.message() }

func (e *Error) message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, safePath(e.Path), e.Status)
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.ScimType != "" {
		b.WriteString(" (" + e.ScimType + ")")
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Temporary reports whether trying again later may succeed: 408, 429, 500, 502, 503 and 504.
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// IsStatus reports whether err is or wraps an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// IsScimType reports whether err is or wraps an *Error with the given scimType.
func IsScimType(err error, scimType string) bool {
	var e *Error
	return errors.As(err, &e) && e.ScimType == scimType
}

// IsTemporary reports whether err is or wraps an error whose Temporary method says that
// trying again may succeed (*Error with a retryable status, most *TransportError).
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// TransportError is a request that got no complete HTTP answer: connection refused or reset,
// a timeout, a TLS failure. Timeouts and connection failures are temporary; TLS certificate
// and handshake failures are not, as trying again cannot fix a configuration mistake.
type TransportError struct {
	Method, Path string
	Timeout      bool  // no complete answer within Config.Timeout
	NotSent      bool  // the connection could not be made: the service saw nothing
	TLS          bool  // certificate verification or TLS handshake failure
	Err          error // the cause, from net/http, net or crypto/tls
	msg          string
}

// Error renders "scim: GET /Users: timeout: ..." with secrets removed.
func (e *TransportError) Error() string { return "scim: " + e.message() }

func (e *TransportError) message() string {
	return e.Method + " " + safePath(e.Path) + ": " + logsafe.Text(e.msg)
}

// safePath is a request path as an error shows it: a lookup filter built
// from a 100 KB uid is cut (logsafe.Text), and escaped.
func safePath(p string) string { return logsafe.Escape(logsafe.Cap(p, 512)) }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Temporary reports whether trying again may succeed: true except for TLS failures.
func (e *TransportError) Temporary() bool { return !e.TLS }

// newTransportError classifies err, the failure of one request, and describes it for people.
// timedOut tells that the attempt's own deadline (timeout) passed; hasCert that a client
// certificate was configured (for the hint when the server rejects the handshake).
func newTransportError(method, path string, err error, timeout time.Duration, timedOut, hasCert bool, redact func(string) string) *TransportError {
	e := &TransportError{Method: method, Path: path, Err: err}
	var ue *url.Error
	cause := err
	if errors.As(err, &ue) {
		cause = ue.Err // url.Error repeats the whole URL; the method and path are enough
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		alert     tls.AlertError
		opErr     *net.OpError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &unknownCA):
		e.TLS = true
		e.msg = "TLS certificate verification failed: the server's certificate is signed by an authority " +
			"this client does not trust (set the CA file to the CA that signed it): " + cause.Error()
	case errors.As(err, &hostname):
		e.TLS = true
		e.msg = "TLS certificate verification failed: the server's certificate is not valid for this host: " + cause.Error()
	case errors.As(err, &invalid):
		e.TLS = true
		e.msg = "TLS certificate verification failed: " + cause.Error()
	case errors.As(err, &verifyErr):
		e.TLS = true
		e.msg = "TLS certificate verification failed: " + cause.Error()
	case errors.As(err, &recordErr):
		e.TLS = true
		e.msg = "TLS handshake failed (is the server speaking HTTPS?): " + cause.Error()
	case errors.As(err, &alert) || (errors.As(err, &opErr) && opErr.Op == "remote error"):
		// A TLS alert from the server (crypto/tls reports it as a "remote error" OpError):
		// typically a missing or untrusted client certificate.
		e.TLS = true
		hint := ""
		if !hasCert {
			hint = " (if it requires a client certificate, set the certificate and key files)"
		}
		reason := cause.Error()
		if opErr != nil {
			reason = opErr.Error() // without net/http's internal prefixes
		}
		e.msg = "TLS handshake rejected by the server" + hint + ": " + reason
	case timedOut || (errors.As(err, &netErr) && netErr.Timeout()):
		e.Timeout = true
		e.msg = fmt.Sprintf("timeout: no complete response within %s", timeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		e.msg = "the server closed the connection without a complete response"
	default:
		e.msg = "request failed: " + cause.Error()
	}
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		e.NotSent = true
	}
	e.msg = redact(e.msg)
	return e
}

// parseError builds the *Error for a non-2xx response from its status, headers and body.
func parseError(method, path string, status int, h http.Header, body []byte, now time.Time, redact func(string) string) *Error {
	e := &Error{Status: status, Method: method, Path: path}
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	// Secrets are removed from the whole body before it is cut to an
	// excerpt, so that a secret straddling the cut leaves no prefix behind,
	// and again from the excerpt, whose entities and escapes are decoded.
	trimmed := strings.TrimSpace(redact(string(body)))
	if CheckDepth([]byte(trimmed)) == nil && gjson.Valid(trimmed) && strings.HasPrefix(trimmed, "{") {
		doc := gjson.Parse(trimmed)
		e.ScimType = excerpt(redact(doc.Get("scimType").String()), false)
		// RFC 7644 §3.12 "detail"; then the usual fields of other JSON error bodies
		// (OAuth2 RFC 6749 §5.2, RFC 9457 problem details, ad-hoc "message"/"error").
		for _, k := range []string{"detail", "error_description", "message", "title", "error"} {
			if v := doc.Get(k); v.Exists() && v.String() != "" {
				e.Detail = excerpt(redact(v.String()), false)
				break
			}
		}
		if e.Detail == "" && e.ScimType == "" && !isSCIMError(doc) {
			e.Detail = excerpt(trimmed, false)
		}
	} else if trimmed != "" {
		e.Detail = excerpt(trimmed, looksHTML(h.Get("Content-Type"), trimmed))
	}
	e.Detail = redact(e.Detail)
	return e
}

func isSCIMError(doc gjson.Result) bool {
	for _, s := range doc.Get("schemas").Array() {
		if s.String() == URNError {
			return true
		}
	}
	return false
}

func looksHTML(contentType, body string) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return true
	}
	return strings.HasPrefix(body, "<")
}

var (
	reScriptStyle = regexp.MustCompile(`(?is)<(script|style)\b.*?</(script|style)\s*>`)
	reTag         = regexp.MustCompile(`(?s)<[^>]*>`)
)

// excerpt turns an error body into one short line: tags stripped (HTML), entities decoded,
// control characters dropped, whitespace collapsed, cut at maxDetail runes.
func excerpt(s string, isHTML bool) string {
	if isHTML {
		s = reScriptStyle.ReplaceAllString(s, " ")
		s = reTag.ReplaceAllString(s, " ")
		s = html.UnescapeString(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if !unicode.IsPrint(r) {
			continue
		}
		if n == maxDetail {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
			n++
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// parseRetryAfter reads an RFC 9110 §10.2.3 Retry-After value: delay-seconds or an HTTP-date.
// A date in the past means no wait (0, true); an unreadable value means (0, false).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(365 * 24 * 3600) // clamp absurd values instead of overflowing
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
