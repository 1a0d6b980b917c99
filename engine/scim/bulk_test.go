package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

func userOp(i int, pad int) BulkOperation {
	return BulkOperation{Method: "POST", Path: "/Users", BulkID: fmt.Sprintf("b%d", i),
		Data: []byte(fmt.Sprintf(`{"userName":"u%d","displayName":%q}`, i, strings.Repeat("x", pad)))}
}

// TestBulkBatchLimits: a batch takes operations while both limits hold,
// and its Size is the exact length of the body sent.
func TestBulkBatchLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits BulkLimits
		ops    int
		pad    int
		want   []int // operations per batch, filling in order
	}{
		{"no limits", BulkLimits{}, 7, 10, []int{7}},
		{"maxOperations", BulkLimits{MaxOperations: 3}, 7, 10, []int{3, 3, 1}},
		{"maxPayloadSize", BulkLimits{MaxPayloadSize: 400}, 7, 50, []int{2, 2, 2, 1}},
		{"both, payload first", BulkLimits{MaxOperations: 5, MaxPayloadSize: 400}, 7, 50, []int{2, 2, 2, 1}},
		{"both, operations first", BulkLimits{MaxOperations: 2, MaxPayloadSize: 4000}, 5, 50, []int{2, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			b := NewBulkBatch(tt.limits)
			for i := 0; i < tt.ops; i++ {
				op := userOp(i, tt.pad)
				if !tt.limits.FitsAlone(op) {
					t.Fatalf("op %d does not fit alone", i)
				}
				if !b.Fits(op) {
					got = append(got, b.Len())
					b = NewBulkBatch(tt.limits)
				}
				b.Add(op)
				body := b.Body()
				if b.Size() != len(body) {
					t.Fatalf("Size %d, body %d bytes", b.Size(), len(body))
				}
				if tt.limits.MaxPayloadSize > 0 && len(body) > tt.limits.MaxPayloadSize {
					t.Fatalf("body of %d bytes over the limit %d", len(body), tt.limits.MaxPayloadSize)
				}
				var doc struct {
					Schemas      []string
					Operations   []map[string]any
					FailOnErrors *int `json:"failOnErrors"`
				}
				if err := json.Unmarshal(body, &doc); err != nil || len(doc.Operations) != b.Len() || doc.Schemas[0] != URNBulkRequest || doc.FailOnErrors != nil {
					t.Fatalf("body %s: %v", body, err)
				}
			}
			got = append(got, b.Len())
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("batches %v, want %v", got, tt.want)
			}
		})
	}
	if (BulkLimits{MaxPayloadSize: 100}).FitsAlone(userOp(1, 200)) {
		t.Error("an operation larger than maxPayloadSize fits alone")
	}
}

// TestBulkResults: each operation's answer is matched to it (by bulkId,
// else by position) and read as a single request's answer would be.
func TestBulkResults(t *testing.T) {
	c, err := NewClient(Config{URL: "http://127.0.0.1:1/scim", Auth: AuthBearer, Token: secret.New("tok-XYZ-secret-value")})
	if err != nil {
		t.Fatal(err)
	}
	ops := []BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "a", Data: []byte(`{"userName":"a","password":"pw-of-a-123"}`)},
		{Method: "POST", Path: "/Users", BulkID: "b", Data: []byte(`{"userName":"b"}`)},
		{Method: "PATCH", Path: "/Groups/g1", Data: []byte(`{}`)},
	}
	tests := []struct {
		name   string
		answer string
		want   []string // per op: "status id" or "status error"
		err    string
	}{
		{"SCIMMY, out of order", `{"schemas":["` + URNBulkResponse + `"],"Operations":[` +
			`{"method":"POST","bulkId":"b","location":"http://h/scim/Users/id%20b","status":"201"},` +
			`{"method":"POST","bulkId":"a","status":"400","response":{"status":"400","scimType":"invalidValue","detail":"bad password pw-of-a-123"}},` +
			`{"method":"PATCH","location":"http://h/scim/Groups/g1","status":"200"}]}`,
			[]string{"400 scim: POST /Users: 400 Bad Request (invalidValue): bad password [redacted]", "201 id b", "200 g1"}, ""},
		{"numeric and worded statuses, id from the response", `{"Operations":[{"bulkId":"a","status":201,"response":{"id":"ida"}},` +
			`{"bulkId":"b","status":"201 Created","location":"/Users/idb/"},{"status":"204"}]}`,
			[]string{"201 ida", "201 idb", "204 "}, ""},
		{"a result missing", `{"Operations":[{"bulkId":"a","status":"201","location":"/Users/x"}]}`,
			[]string{"201 x", "0 scim: POST /Bulk: the answer has no result for operation 2 (POST /Users): it may or may not have been carried out",
				"0 scim: POST /Bulk: the answer has no result for operation 3 (PATCH /Groups/g1): it may or may not have been carried out"}, ""},
		{"not JSON", `<html>busy</html>`, nil, "not a BulkResponse: busy"},
		{"no Operations", `{"schemas":["` + URNBulkResponse + `"]}`, nil, "it has no Operations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.bulkResults(ops, []byte(tt.answer))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range got {
				if r.Err != nil {
					lines = append(lines, fmt.Sprintf("%d %v", r.Status, r.Err))
				} else {
					lines = append(lines, fmt.Sprintf("%d %s", r.Status, r.ID))
				}
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestBulkRealServer: a BulkRequest to the SCIMMY test server creates a
// user and a group whose member is that user by bulkId (RFC 7644 §3.7.2);
// a duplicate userName fails alone with the 409 a single POST gets.
func TestBulkRealServer(t *testing.T) {
	env := scimtest.Server(t)
	ua := scimtest.UserAgent(t)
	c, err := NewClient(Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: ua, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	name := scimtest.Unique("bulk")
	ops := []BulkOperation{
		{Method: "POST", Path: "/Users", BulkID: "u", Data: []byte(`{"schemas":["` + URNUser + `"],"userName":"` + name + `"}`)},
		{Method: "POST", Path: "/Users", BulkID: "dup", Data: []byte(`{"schemas":["` + URNUser + `"],"userName":"` + strings.ToUpper(name) + `"}`)},
		{Method: "POST", Path: "/Groups", BulkID: "g", Data: []byte(`{"schemas":["` + URNGroup + `"],"displayName":"` + name + `","members":[{"value":"bulkId:u"}]}`)},
	}
	res, err := c.Bulk(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != 201 || res[0].ID == "" || res[2].Status != 201 || res[2].ID == "" {
		t.Fatalf("results %+v", res)
	}
	if !IsStatus(res[1].Err, http.StatusConflict) || !strings.Contains(res[1].Err.Error(), "uniqueness") {
		t.Errorf("duplicate: %v", res[1].Err)
	}
	defer func() {
		_ = c.Delete(context.Background(), "/Groups", res[2].ID)
		_ = c.Delete(context.Background(), "/Users", res[0].ID)
	}()
	g, err := c.Get(context.Background(), "/Groups/"+res[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(g), `"value":"`+res[0].ID+`"`) {
		t.Errorf("the group's member is not the user created by bulkId: %s", g)
	}
	n := 0
	for _, r := range env.Requests(t, ua) {
		if r.Method == "POST" && r.Path == "/Bulk" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d POST /Bulk requests logged, want 1", n)
	}
}
