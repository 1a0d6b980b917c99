package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// BulkOperation is one operation of an RFC 7644 §3.7 BulkRequest.
type BulkOperation struct {
	Method string // POST, PUT, PATCH or DELETE
	Path   string // relative to the base URL: "/Users" for a POST, "/Users/{id}" otherwise
	// BulkID names a POST's new resource within the request, so that other
	// operations of the same request can refer to it as "bulkId:<BulkID>"
	// (RFC 7644 §3.7.2). Required for POST.
	BulkID string
	Data   []byte // the resource or PatchOp as raw JSON; nil for DELETE
}

// BulkLimits bound one BulkRequest: its operations and its size in bytes
// as sent (RFC 7643 §5 bulk.maxOperations and maxPayloadSize). 0: no bound.
type BulkLimits struct {
	MaxOperations  int
	MaxPayloadSize int
}

// bulkHead and bulkTail surround the operations of a BulkRequest body.
// failOnErrors is left out: the service then carries out every operation
// whatever the others' outcome (RFC 7644 §3.7.3), so that one refused
// resource fails one change, not the batch.
const (
	bulkHead = `{"schemas":["` + URNBulkRequest + `"],"Operations":[`
	bulkTail = `]}`
)

// encode renders the operation as it is sent.
func (op BulkOperation) encode() []byte {
	b := make([]byte, 0, len(op.Data)+len(op.Path)+len(op.BulkID)+48)
	b = append(b, `{"method":`...)
	b = appendJSON(b, op.Method)
	b = append(b, `,"path":`...)
	b = appendJSON(b, op.Path)
	if op.BulkID != "" {
		b = append(b, `,"bulkId":`...)
		b = appendJSON(b, op.BulkID)
	}
	if op.Data != nil {
		b = append(b, `,"data":`...)
		b = append(b, op.Data...)
	}
	return append(b, '}')
}

func appendJSON(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// BulkBatch gathers operations into one BulkRequest within limits. Its
// size is the body's exact length, so that a batch that fits is one the
// service's maxPayloadSize accepts.
type BulkBatch struct {
	limits BulkLimits
	ops    []BulkOperation
	enc    [][]byte
	size   int
}

// NewBulkBatch returns an empty batch bounded by limits.
func NewBulkBatch(limits BulkLimits) *BulkBatch {
	return &BulkBatch{limits: limits, size: len(bulkHead) + len(bulkTail)}
}

// Fits reports whether op can join the batch within its limits. An empty
// batch takes any operation that fits alone (FitsAlone).
func (b *BulkBatch) Fits(op BulkOperation) bool {
	return b.fits(len(op.encode()))
}

func (b *BulkBatch) fits(n int) bool {
	if b.limits.MaxOperations > 0 && len(b.ops)+1 > b.limits.MaxOperations {
		return false
	}
	size := b.size + n
	if len(b.ops) > 0 {
		size++ // the comma
	}
	return b.limits.MaxPayloadSize <= 0 || size <= b.limits.MaxPayloadSize
}

// Add appends op. It does not check the limits: call Fits first.
func (b *BulkBatch) Add(op BulkOperation) {
	e := op.encode()
	if len(b.ops) > 0 {
		b.size++
	}
	b.ops = append(b.ops, op)
	b.enc = append(b.enc, e)
	b.size += len(e)
}

// Len returns the number of operations in the batch.
func (b *BulkBatch) Len() int { return len(b.ops) }

// Size returns the length in bytes of the body Body returns.
func (b *BulkBatch) Size() int { return b.size }

// Operations returns the operations in the order they are sent.
func (b *BulkBatch) Operations() []BulkOperation { return b.ops }

// Body returns the BulkRequest as it is sent.
func (b *BulkBatch) Body() []byte {
	out := make([]byte, 0, b.size)
	out = append(out, bulkHead...)
	for i, e := range b.enc {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, bulkTail...)
}

// FitsAlone reports whether op can be sent at all within limits: an
// operation larger than maxPayloadSize on its own must go as a single
// request.
func (l BulkLimits) FitsAlone(op BulkOperation) bool {
	return NewBulkBatch(l).Fits(op)
}

// BulkResult is the service's answer to one operation of a BulkRequest
// (RFC 7644 §3.7.3), matched to the operation sent.
type BulkResult struct {
	Status   int    // the operation's HTTP status; 0 when the answer has no result for it
	Location string // the resource's URI, for a successful POST, PUT or PATCH
	// ID is the new resource's id: the response's id when the service sent
	// the resource, else the last segment of Location.
	ID       string
	Response []byte // the response the service gave for the operation, if any (raw JSON)
	// Err is the operation's failure as an *Error (status, scimType,
	// detail), nil when it succeeded: the same error a single request
	// refused so would give.
	Err error
}

// Bulk sends ops as one BulkRequest (RFC 7644 §3.7) and returns one result
// per operation, in the order of ops. The request goes through Do like
// any other: paced, throttled on 429, resent only when surely not
// processed. A POST /Bulk is not idempotent (it creates), so an error
// that leaves its outcome unknown (IsUncertain, or an answer that cannot
// be read: a *BulkAnswerError) must be followed by looking up what the
// operations would have created before anything is sent again. An answer
// that leaves an operation out (a service that stopped early) gives that
// operation Status 0 and an Err: it may or may not have been carried out.
func (c *Client) Bulk(ctx context.Context, ops []BulkOperation) ([]BulkResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	b := NewBulkBatch(BulkLimits{})
	for _, op := range ops {
		b.Add(op)
	}
	return c.SendBulk(ctx, b)
}

// SendBulk sends the batch b (see Bulk).
func (c *Client) SendBulk(ctx context.Context, b *BulkBatch) ([]BulkResult, error) {
	body := b.Body()
	r, err := c.Do(ctx, http.MethodPost, "/Bulk", body)
	if err != nil {
		return nil, err
	}
	return c.bulkResults(b.ops, r.Body)
}

// BulkAnswerError is a 2xx answer to a BulkRequest that is not a
// BulkResponse: what the service did is unknown.
type BulkAnswerError struct{ Detail string }

func (e *BulkAnswerError) Error() string {
	return "scim: POST /Bulk: the answer is not a BulkResponse: " + e.Detail
}

// bulkResults matches the answer's operations to ops: by bulkId for the
// POSTs that carry one (RFC 7644 §3.7.3 requires the service to return it),
// else by position.
func (c *Client) bulkResults(ops []BulkOperation, answer []byte) ([]BulkResult, error) {
	if !gjson.ValidBytes(answer) || !gjson.ParseBytes(answer).IsObject() {
		return nil, &BulkAnswerError{Detail: c.redact(excerpt(string(answer), true))}
	}
	list := field(gjson.ParseBytes(answer), "Operations")
	if !list.IsArray() {
		return nil, &BulkAnswerError{Detail: "it has no Operations"}
	}
	answers := list.Array()
	byBulkID := map[string]int{}
	for i, op := range ops {
		if op.BulkID != "" {
			byBulkID[op.BulkID] = i
		}
	}
	out := make([]BulkResult, len(ops))
	filled := make([]bool, len(ops))
	for pos, a := range answers {
		i := -1
		if id := field(a, "bulkId"); id.Type == gjson.String {
			if j, ok := byBulkID[id.Str]; ok {
				i = j
			}
		}
		if i < 0 && pos < len(ops) {
			i = pos // no bulkId (not a POST, or a service that leaves it out): by position
		}
		if i < 0 || filled[i] {
			continue
		}
		filled[i] = true
		out[i] = c.bulkResult(ops[i], a)
	}
	for i := range out {
		if !filled[i] {
			out[i].Err = fmt.Errorf("scim: POST /Bulk: the answer has no result for operation %d (%s %s): it may or may not have been carried out",
				i+1, ops[i].Method, safePath(ops[i].Path))
		}
	}
	return out, nil
}

// bulkResult reads one operation's answer.
func (c *Client) bulkResult(op BulkOperation, a gjson.Result) BulkResult {
	var r BulkResult
	st := field(a, "status")
	switch st.Type {
	case gjson.String:
		// RFC 7644 §3.7.3 sends "201"; some services send "201 Created".
		head, _, _ := strings.Cut(strings.TrimSpace(st.Str), " ")
		r.Status, _ = strconv.Atoi(head)
	case gjson.Number:
		r.Status = int(st.Int())
	}
	if loc := field(a, "location"); loc.Type == gjson.String {
		r.Location = loc.Str
	}
	resp := field(a, "response")
	if resp.Exists() {
		r.Response = []byte(resp.Raw)
	}
	if r.Status >= 200 && r.Status <= 299 {
		if id := field(resp, "id"); id.Type == gjson.String && id.Str != "" {
			r.ID = id.Str
		} else {
			r.ID = lastSegment(r.Location)
		}
		return r
	}
	redact := c.redactSent(op.Data)
	if r.Status == 0 {
		r.Err = fmt.Errorf("scim: %s %s in POST /Bulk: the answer gives no status for the operation", op.Method, safePath(op.Path))
		return r
	}
	e := &Error{Status: r.Status, Method: op.Method, Path: op.Path}
	if resp.IsObject() {
		e.ScimType = excerpt(redact(field(resp, "scimType").String()), false)
		e.Detail = excerpt(redact(field(resp, "detail").String()), false)
	}
	r.Err = e
	return r
}

// lastSegment is the id at the end of a resource URI, unescaped.
func lastSegment(loc string) string {
	if u, err := url.Parse(loc); err == nil {
		loc = u.EscapedPath()
	}
	loc = strings.TrimRight(loc, "/")
	seg := loc[strings.LastIndex(loc, "/")+1:]
	if s, err := url.PathUnescape(seg); err == nil {
		return s
	}
	return seg
}

// MaxAttempts returns the attempts the client makes of one request, the
// first included: how often a caller that resends by itself (a Bulk
// request whose outcome was unknown, once looked up) may try.
func (c *Client) MaxAttempts() int { return c.retry.MaxAttempts }

// Backoff waits before the caller's own attempt number attempt+1 after
// err, as the client's retry policy waits between its attempts (Retry-After
// honoured, full jitter), and through the client's shared pace, so that a
// resend waits out a 429's pause like every other request. It returns
// ctx's error when ctx ends first.
func (c *Client) Backoff(ctx context.Context, attempt int, err error) error {
	if serr := c.retry.Sleep(ctx, c.retry.Wait(attempt, err)); serr != nil {
		return serr
	}
	return ctx.Err()
}
