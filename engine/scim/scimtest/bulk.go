package scimtest

import (
	"net/http"
	"testing"
)

// BulkOutcome is one operation of a logged POST /Bulk and the service's
// answer to it: what the operation's own request would have been logged
// with. The request log keeps one entry per HTTP request, so counts of
// requests stay counts of what went over the wire.
type BulkOutcome struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	BulkID   string `json:"bulkId"`
	Status   int    `json:"status"` // 0: the answer has no result for it
	ScimType string `json:"scimType"`
	Location string `json:"location"` // the resource's URI, for a success
}

// RequireBulkChecks fails the test when the server runs a scim-server.js
// older than the one whose checks and captures (unknown attributes,
// refused passwords, strict mode, /_control/passwords) see each operation
// of a POST /Bulk: against such a server, whatever a resync sends in Bulk
// requests would go unchecked, and a test would pass while proving less
// than it says.
func (e Env) RequireBulkChecks(t testing.TB) {
	t.Helper()
	var health struct {
		BulkChecks bool `json:"bulkChecks"`
	}
	if err := e.control(http.MethodGet, "/health", nil, &health); err != nil {
		t.Fatalf("SCIM test server at %s does not answer: %v", e.ControlURL, err)
	}
	if !health.BulkChecks {
		t.Fatalf("the SCIM test server at %s runs an older scim-server.js whose checks do not see into POST /Bulk: restart it with testdata/servers/start-scim.sh", e.ControlURL)
	}
}
