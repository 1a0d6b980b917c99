package scimtest

import (
	"net/http"
	"net/url"
	"testing"
)

// Strict is a strict-mode setting of POST /_control/strict: the server refuses what some real
// SCIM services refuse, for the requests sent with UserAgent.
type Strict struct {
	UserAgent string `json:"userAgent"`
	// RejectFilteredPaths refuses a PATCH whose operations include a path with a value filter
	// (emails[type eq "other"], emails[type eq "work"].value) with 400 and ScimType; nothing
	// of it is applied.
	RejectFilteredPaths bool `json:"rejectFilteredPaths"`
	// ScimType is the scimType of that 400: "invalidPath" (the server's default when nil),
	// "noTarget", "invalidFilter", or "" for none.
	ScimType *string `json:"scimType,omitempty"`
}

// Strict sets strict mode for s.UserAgent, and turns it off again when the test ends. A
// server older than strict mode answers 404: the test fails, asking for a restart.
func (e Env) Strict(t testing.TB, s Strict) {
	t.Helper()
	if s.UserAgent == "" {
		t.Fatal("scimtest: Strict needs a UserAgent: the server is shared with other tests")
	}
	if err := e.control(http.MethodPost, "/strict", s, nil); err != nil {
		t.Fatalf("setting strict mode (restart the SCIM test server if it predates /_control/strict): %v", err)
	}
	t.Cleanup(func() {
		_ = e.control(http.MethodDelete, "/strict?userAgent="+url.QueryEscape(s.UserAgent), nil, nil)
	})
}
