package scim

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorTextCapped: a request path built from a 100 KB uid (a lookup
// filter) is cut in the error's text and its control characters escaped,
// for a service's answer and for a failed transport alike; the field
// keeps the path whole.
func TestErrorTextCapped(t *testing.T) {
	path := "/Users?filter=" + strings.Repeat("u", 100<<10) + "\x1b[2J"
	for _, err := range []error{
		&Error{Status: 400, Method: "GET", Path: path, Detail: "bad"},
		&TransportError{Method: "GET", Path: path, msg: "connection reset \x1b]0;x\x07", Err: errors.New("x")},
	} {
		msg := err.Error()
		if len(msg) > 1024 || strings.ContainsAny(msg, "\x1b\x07") || !strings.Contains(msg, "bytes)") {
			t.Errorf("%T: %d bytes: %.200q", err, len(msg), msg)
		}
	}
}
