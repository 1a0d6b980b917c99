package scim

import (
	"net/http"
	"time"
)

// RequestObserver is told of every HTTP request the Client sends (each
// attempt of a retried request, OAuth2 token requests excepted): its
// method, the status of the answer (0 when none came: a timeout, a refused
// connection) and the time from sending it to reading the whole answer.
// It is how `run --listen` counts requests by method and status and draws
// their latency, without the scim package knowing of any metrics library.
// It is called from the goroutine that made the request and must not block.
type RequestObserver func(method string, status int, took time.Duration)

// WithObserver sets a RequestObserver (default none).
func WithObserver(o RequestObserver) Option { return func(c *Client) { c.observe = o } }

// observed reports one attempt to the observer, if any.
func (c *Client) observed(method string, hr *http.Response, start time.Time) {
	if c.observe == nil {
		return
	}
	status := 0
	if hr != nil {
		status = hr.StatusCode
	}
	c.observe(method, status, time.Since(start))
}
