package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Support is what a service says of an optional feature. Unknown is what
// a service that said nothing gets: no ServiceProviderConfig, a garbled
// one, or the attribute missing; callers then keep their defaults.
type Support int8

// The values of Support.
const (
	Unknown Support = iota
	Supported
	Unsupported
)

// String renders "unknown", "yes" or "no", for logs.
func (s Support) String() string {
	switch s {
	case Supported:
		return "yes"
	case Unsupported:
		return "no"
	}
	return "unknown"
}

// ServiceProviderConfig is what a service advertises of itself at
// /ServiceProviderConfig (RFC 7643 §5), with RFC 9865 §4's pagination.
// The zero value is "unknown": every feature Unknown, every limit 0 (none
// advertised). Services advertise wrongly often enough that the engine's
// settings override every field (the scim block's bulk settings).
type ServiceProviderConfig struct {
	// Read is set when the document was read and parsed; Problem says why
	// not otherwise (a 404, a 501, not JSON). Neither stops anything: an
	// unread document is simply unknown.
	Read    bool
	Problem error

	Patch          Support
	Bulk           BulkConfig
	Filter         FilterConfig
	ChangePassword Support
	Sort           Support
	ETag           Support
	Pagination     PaginationConfig
}

// BulkConfig is RFC 7643 §5's bulk: whether POST /Bulk (RFC 7644 §3.7) is
// served, and its limits (0: not advertised).
type BulkConfig struct {
	Supported      Support
	MaxOperations  int // operations per BulkRequest
	MaxPayloadSize int // bytes per BulkRequest, as sent
}

// FilterConfig is RFC 7643 §5's filter: whether filters are served, and
// the most resources one answer holds (0: not advertised).
type FilterConfig struct {
	Supported  Support
	MaxResults int
}

// PaginationConfig is RFC 9865 §4's pagination: which of cursor and index
// pagination the service offers, which it uses when a request names none
// ("cursor" or "index"; "" when not said), its page sizes (0: not
// advertised) and how long a cursor stays valid (0: not advertised).
type PaginationConfig struct {
	Cursor          Support
	Index           Support
	DefaultMethod   string
	DefaultPageSize int
	MaxPageSize     int
	CursorTimeout   time.Duration
}

// String renders the document on one line for a log, e.g. "patch=yes
// bulk=yes(maxOperations=1000 maxPayloadSize=1048576) filter=yes(maxResults=200) …".
func (c ServiceProviderConfig) String() string {
	if !c.Read {
		if c.Problem != nil {
			return "unknown (" + c.Problem.Error() + ")"
		}
		return "unknown"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "patch=%s bulk=%s", c.Patch, c.Bulk.Supported)
	if c.Bulk.MaxOperations > 0 || c.Bulk.MaxPayloadSize > 0 {
		fmt.Fprintf(&b, "(maxOperations=%d maxPayloadSize=%d)", c.Bulk.MaxOperations, c.Bulk.MaxPayloadSize)
	}
	fmt.Fprintf(&b, " filter=%s", c.Filter.Supported)
	if c.Filter.MaxResults > 0 {
		fmt.Fprintf(&b, "(maxResults=%d)", c.Filter.MaxResults)
	}
	fmt.Fprintf(&b, " changePassword=%s sort=%s etag=%s", c.ChangePassword, c.Sort, c.ETag)
	p := c.Pagination
	if p.Cursor != Unknown || p.Index != Unknown {
		fmt.Fprintf(&b, " pagination=(cursor=%s index=%s", p.Cursor, p.Index)
		if p.DefaultMethod != "" {
			fmt.Fprintf(&b, " default=%s", p.DefaultMethod)
		}
		if p.DefaultPageSize > 0 {
			fmt.Fprintf(&b, " defaultPageSize=%d", p.DefaultPageSize)
		}
		if p.MaxPageSize > 0 {
			fmt.Fprintf(&b, " maxPageSize=%d", p.MaxPageSize)
		}
		if p.CursorTimeout > 0 {
			fmt.Fprintf(&b, " cursorTimeout=%s", p.CursorTimeout)
		}
		b.WriteString(")")
	}
	return b.String()
}

// discovered keeps a Client's ServiceProviderConfig once read.
type discovered struct {
	mu  sync.Mutex
	cfg *ServiceProviderConfig
}

// Discover reads the service's /ServiceProviderConfig. It never fails: a
// service that does not serve it (404, 501), answers with something else
// than the document, or cannot be reached gives the unknown config, with
// Problem saying why (for a log line). Only ctx stops it early.
//
// The answer is kept for the Client's life and given again without a
// request: a resync asks twice (the listing's page size, the Bulk plan)
// and a service's configuration does not change within one command. Only
// a document read, or a service's definite 4xx (it does not serve one),
// is kept; an unreachable service or a 5xx is asked again next time.
func (c *Client) Discover(ctx context.Context) ServiceProviderConfig {
	c.spc.mu.Lock()
	defer c.spc.mu.Unlock()
	if c.spc.cfg != nil {
		return *c.spc.cfg
	}
	cfg := c.discover(ctx)
	var se *Error
	if cfg.Read || errors.As(cfg.Problem, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests {
		c.spc.cfg = &cfg
	}
	return cfg
}

func (c *Client) discover(ctx context.Context) ServiceProviderConfig {
	body, err := c.Get(ctx, "/ServiceProviderConfig")
	if err != nil {
		return ServiceProviderConfig{Problem: err}
	}
	cfg, err := ParseServiceProviderConfig(body)
	if err != nil {
		return ServiceProviderConfig{Problem: errors.New(c.redact(err.Error()))}
	}
	return cfg
}

// ParseServiceProviderConfig reads a ServiceProviderConfig document. It
// is lenient where services are sloppy — attribute names in any case
// (RFC 7643 §2.1), booleans and numbers sent as strings — and strict
// where it counts: a document that is not a JSON object is an error, and
// a value of the wrong kind, or a negative limit, is Unknown (0), never a
// guess.
func ParseServiceProviderConfig(doc []byte) (ServiceProviderConfig, error) {
	if err := CheckDepth(doc); err != nil {
		return ServiceProviderConfig{}, fmt.Errorf("the ServiceProviderConfig is refused: %w", err)
	}
	if !gjson.ValidBytes(doc) || !gjson.ParseBytes(doc).IsObject() {
		return ServiceProviderConfig{}, fmt.Errorf("the ServiceProviderConfig is not a JSON object: %s", excerpt(string(doc), looksHTML("", string(doc))))
	}
	root := gjson.ParseBytes(doc)
	cfg := ServiceProviderConfig{Read: true}
	cfg.Patch = support(field(field(root, "patch"), "supported"))
	bulk := field(root, "bulk")
	cfg.Bulk = BulkConfig{
		Supported:      support(field(bulk, "supported")),
		MaxOperations:  count(field(bulk, "maxOperations")),
		MaxPayloadSize: count(field(bulk, "maxPayloadSize")),
	}
	filter := field(root, "filter")
	cfg.Filter = FilterConfig{Supported: support(field(filter, "supported")), MaxResults: count(field(filter, "maxResults"))}
	cfg.ChangePassword = support(field(field(root, "changePassword"), "supported"))
	cfg.Sort = support(field(field(root, "sort"), "supported"))
	cfg.ETag = support(field(field(root, "etag"), "supported"))
	pg := field(root, "pagination")
	cfg.Pagination = PaginationConfig{
		Cursor:          support(field(pg, "cursor")),
		Index:           support(field(pg, "index")),
		DefaultPageSize: count(field(pg, "defaultPageSize")),
		MaxPageSize:     count(field(pg, "maxPageSize")),
		CursorTimeout:   time.Duration(count(field(pg, "cursorTimeout"))) * time.Second,
	}
	if m := field(pg, "defaultPaginationMethod"); m.Type == gjson.String {
		switch strings.ToLower(m.Str) {
		case "cursor", "index":
			cfg.Pagination.DefaultMethod = strings.ToLower(m.Str)
		}
	}
	return cfg, nil
}

// field returns obj's attribute name, matched without regard to case as
// RFC 7643 §2.1 has it; an empty result when obj is not an object.
func field(obj gjson.Result, name string) gjson.Result {
	var out gjson.Result
	if !obj.IsObject() {
		return out
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		if strings.EqualFold(k.String(), name) {
			out = v
			return false
		}
		return true
	})
	return out
}

// support reads a boolean: true or false, or the strings "true" and
// "false"; anything else is Unknown.
func support(v gjson.Result) Support {
	switch {
	case v.Type == gjson.True:
		return Supported
	case v.Type == gjson.False:
		return Unsupported
	case v.Type == gjson.String && strings.EqualFold(strings.TrimSpace(v.Str), "true"):
		return Supported
	case v.Type == gjson.String && strings.EqualFold(strings.TrimSpace(v.Str), "false"):
		return Unsupported
	}
	return Unknown
}

// count reads a non-negative whole number, or a string holding one; 0
// for anything else (a fraction, a negative, a number too large).
func count(v gjson.Result) int {
	var s string
	switch v.Type {
	case gjson.Number:
		s = v.Raw
	case gjson.String:
		s = strings.TrimSpace(v.Str)
	default:
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int(n)
}
