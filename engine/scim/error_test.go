package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func noRedact(s string) string { return s }

func TestParseError(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   Error
		msg    string
	}{
		{
			name: "scim error, status as string", status: 409,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName \"jdoe\" is already taken"}`,
			want: Error{Status: 409, ScimType: "uniqueness", Detail: `userName "jdoe" is already taken`},
			msg:  `scim: POST /Users: 409 Conflict (uniqueness): userName "jdoe" is already taken`,
		},
		{
			name: "scim error, status as number, no scimType", status: 404,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":404,"detail":"Resource 2819c223 not found"}`,
			want: Error{Status: 404, Detail: "Resource 2819c223 not found"},
			msg:  `scim: POST /Users: 404 Not Found: Resource 2819c223 not found`,
		},
		{
			name: "429 with Retry-After seconds", status: 429, header: http.Header{"Retry-After": {"7"}},
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429","detail":"slow down"}`,
			want: Error{Status: 429, Detail: "slow down", RetryAfter: 7 * time.Second},
			msg:  `scim: POST /Users: 429 Too Many Requests: slow down (retry after 7s)`,
		},
		{
			name: "503 with Retry-After date", status: 503,
			header: http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}},
			want:   Error{Status: 503, RetryAfter: 90 * time.Second},
			msg:    `scim: POST /Users: 503 Service Unavailable (retry after 1m30s)`,
		},
		{
			name: "oauth2 style error", status: 401,
			body: `{"error":"invalid_client","error_description":"client authentication failed"}`,
			want: Error{Status: 401, Detail: "client authentication failed"},
		},
		{
			name: "problem details", status: 400, body: `{"title":"Bad Request","status":400}`,
			want: Error{Status: 400, Detail: "Bad Request"},
		},
		{
			name: "unknown json", status: 500, body: `{"weird":true}`,
			want: Error{Status: 500, Detail: `{"weird":true}`},
		},
		{
			name: "html from a proxy", status: 502, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html><head><title>502 Bad Gateway</title><style>body{color:red}</style>" +
				"<script>alert(1)</script></head>\n<body><h1>Bad&nbsp;Gateway</h1>\r\n<p>upstream   &lt;scim&gt; down</p></body></html>",
			want: Error{Status: 502, Detail: "502 Bad Gateway Bad Gateway upstream <scim> down"},
			msg:  "scim: POST /Users: 502 Bad Gateway: 502 Bad Gateway Bad Gateway upstream <scim> down",
		},
		{
			name: "plain text with control characters", status: 503,
			body: "service\x00 \x1b[31munavailable\t\n\n try later",
			want: Error{Status: 503, Detail: "service [31munavailable try later"},
		},
		{
			name: "long body cut", status: 500, body: long,
			want: Error{Status: 500, Detail: strings.Repeat("x", maxDetail) + "…"},
		},
		{
			name: "invalid utf-8", status: 500, body: "bad \xff byte",
			want: Error{Status: 500, Detail: "bad \uFFFD byte"},
		},
		{
			name: "empty body", status: 504,
			want: Error{Status: 504},
			msg:  "scim: POST /Users: 504 Gateway Timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			got := parseError("POST", "/Users", tt.status, h, []byte(tt.body), testNow, noRedact)
			tt.want.Method, tt.want.Path = "POST", "/Users"
			if *got != tt.want {
				t.Errorf("parseError:\n got %#v\nwant %#v", *got, tt.want)
			}
			if tt.msg != "" && got.Error() != tt.msg {
				t.Errorf("Error():\n got %s\nwant %s", got.Error(), tt.msg)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999", 365 * 24 * time.Hour, true},
		{testNow.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"Tue, 24 Nov 2026 12:00:45 GMT", 45 * time.Second, true},
		{"Tuesday, 24-Nov-26 12:01:00 GMT", time.Minute, true}, // RFC 850, obsolete but allowed
		{"Tue Nov 24 12:00:10 2026", 10 * time.Second, true},   // asctime
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, testNow)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 409: false, 412: false, 413: false,
		429: true, 500: true, 501: false, 502: true, 503: true, 504: true,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := &Error{Status: status}
			if e.Temporary() != want {
				t.Errorf("Temporary() = %v, want %v", e.Temporary(), want)
			}
			if IsTemporary(fmt.Errorf("wrapped: %w", e)) != want {
				t.Errorf("IsTemporary(wrapped) = %v, want %v", !want, want)
			}
		})
	}
	if !(&TransportError{Timeout: true}).Temporary() {
		t.Error("timeout TransportError is not temporary")
	}
	if (&TransportError{TLS: true}).Temporary() {
		t.Error("TLS TransportError is temporary")
	}
	if IsTemporary(errors.New("plain")) {
		t.Error("plain error is temporary")
	}
}

func TestIsStatusThroughRetryError(t *testing.T) {
	err := error(&RetryError{Attempts: 3, Err: &Error{Status: 409, ScimType: ScimTypeUniqueness}})
	err = fmt.Errorf("creating jdoe: %w", err)
	if !IsStatus(err, 409) || IsStatus(err, 404) {
		t.Error("IsStatus does not see the *Error inside a *RetryError")
	}
	if !IsScimType(err, ScimTypeUniqueness) {
		t.Error("IsScimType does not see the *Error inside a *RetryError")
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 {
		t.Error("errors.As does not find the *Error")
	}
}
