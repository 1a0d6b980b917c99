package scimtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// ReceivedPassword is the last password a User received from one User-Agent, as the test
// server's /_control/passwords shows it. Only tests read it; the server never logs it (its
// request log shows "(withheld)").
type ReceivedPassword struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Password string `json:"password"`
	Method   string `json:"method"` // POST, PUT or PATCH: the request that carried it
}

// Passwords returns, by userName, the last password each User received in a request sent
// with userAgent and answered 2xx (a POST or PUT body, a PATCH replace or add of password).
// A server started before the endpoint existed fails the test with the way out.
func (e Env) Passwords(t testing.TB, userAgent string) map[string]ReceivedPassword {
	t.Helper()
	var list []ReceivedPassword
	if err := e.control(http.MethodGet, "/passwords?userAgent="+url.QueryEscape(userAgent), nil, &list); err != nil {
		if strings.Contains(err.Error(), "404") {
			t.Fatalf("the SCIM test server has no /_control/passwords: it runs an older scim-server.js; restart it with testdata/servers/start-scim.sh")
		}
		t.Fatalf("reading the received passwords: %v", err)
	}
	out := make(map[string]ReceivedPassword, len(list))
	for _, p := range list {
		out[p.UserName] = p
	}
	return out
}

// RefusePasswords makes the server answer status with scimType (400 "mutability", 403 "")
// to every request from userAgent that carries a password, as a service that does not take
// password writes over SCIM, until the returned function is called or the test ends.
func (e Env) RefusePasswords(t testing.TB, userAgent string, status int, scimType string) (undo func()) {
	t.Helper()
	body := map[string]any{"userAgent": userAgent, "status": status, "scimType": scimType}
	if err := e.control(http.MethodPost, "/passwords/refuse", body, nil); err != nil {
		t.Fatalf("refusing passwords: %v", err)
	}
	undo = func() {
		_ = e.control(http.MethodDelete, "/passwords/refuse?userAgent="+url.QueryEscape(userAgent), nil, nil)
	}
	t.Cleanup(undo)
	return undo
}
