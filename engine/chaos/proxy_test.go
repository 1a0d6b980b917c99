package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of fault the proxy injects. Each is counted on its own.
const (
	fault429RetryAfter = iota // 429 Too Many Requests with Retry-After: 1
	fault429                  // 429 without Retry-After
	fault500                  // 500 Internal Server Error
	fault503                  // 503 Service Unavailable (outside an outage)
	faultDelayBefore          // held 0.5–3 s, then sent to the server even if the client gave up
	faultDelayAfter           // sent at once, the answer held 0.5–3 s: a POST the client times out on still creates
	faultOutage503            // every request during the first part of an outage
	numFaults
)

var faultNames = [numFaults]string{"429+retry-after", "429", "500", "503", "delay-before", "delay-after", "outage-503"}

// faultProxy is a reverse proxy between the engine and the SCIM server. A
// seeded random source picks, per request, whether it passes or gets one
// of the faults (rate: the share of requests that get one); an outage
// answers every request with 503 and can also close the listener, so
// connections are refused. Delayed requests are sent upstream with a
// context the client cannot cancel: a create the client gave up on still
// lands, which is how duplicate creates happen in the field.
type faultProxy struct {
	upstream *url.URL
	addr     string // 127.0.0.1:port, kept across listener restarts
	timeout  time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64 // share of requests given a fault; 0 lets all through
	outage   bool    // answer 503 to every request
	srv      *http.Server
	requests atomic.Int64
	counts   [numFaults]atomic.Int64
	late     atomic.Int64 // delays longer than the client's timeout
	rp       *httputil.ReverseProxy
}

// newFaultProxy starts a proxy on a free 127.0.0.1 port in front of
// upstream (the SCIM base URL's scheme and host). timeout is the engine's
// per-attempt timeout, to count the delays that exceed it.
func newFaultProxy(upstream string, seed int64, timeout time.Duration) (*faultProxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	p := &faultProxy{upstream: u, rng: rand.New(rand.NewSource(seed)), timeout: timeout}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: u.Scheme, Host: u.Host})
			r.Out.Host = u.Host
		},
		Transport: p,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

// URL is the proxy's address with the upstream's path: what the pipe's
// scim url is set to.
func (p *faultProxy) URL() string {
	return "http://" + p.addr + p.upstream.Path
}

func (p *faultProxy) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           p.rp,
		ReadHeaderTimeout: 10 * time.Second,
	}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// SetRate sets the share of requests given a random fault.
func (p *faultProxy) SetRate(rate float64) {
	p.mu.Lock()
	p.rate = rate
	p.mu.Unlock()
}

// SetOutage starts or ends answering 503 to every request.
func (p *faultProxy) SetOutage(on bool) {
	p.mu.Lock()
	p.outage = on
	p.mu.Unlock()
}

// Refuse closes the listener and every open connection, so that new
// connections are refused until Accept.
func (p *faultProxy) Refuse() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close() // the listener and every connection
	}
}

// Accept listens again on the same port, for at most 30 s (another
// process may have taken it meanwhile: unlikely on a loopback port just
// closed).
func (p *faultProxy) Accept() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("listening on %s again: %w", p.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops the proxy.
func (p *faultProxy) Close() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// pick decides what happens to one request: -1 lets it through.
func (p *faultProxy) pick() (kind int, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.outage {
		return faultOutage503, 0
	}
	if p.rate <= 0 || p.rng.Float64() >= p.rate {
		return -1, 0
	}
	kind = p.rng.Intn(faultOutage503) // one of the random kinds, equally likely
	if kind == faultDelayBefore || kind == faultDelayAfter {
		delay = 500*time.Millisecond + time.Duration(p.rng.Int63n(int64(2500*time.Millisecond)))
	}
	return kind, delay
}

// RoundTrip implements http.RoundTripper: the faults happen here.
func (p *faultProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	p.requests.Add(1)
	kind, delay := p.pick()
	if kind < 0 {
		return http.DefaultTransport.RoundTrip(req)
	}
	p.counts[kind].Add(1)
	switch kind {
	case fault429RetryAfter:
		return synth(req, http.StatusTooManyRequests, "1"), nil
	case fault429:
		return synth(req, http.StatusTooManyRequests, ""), nil
	case fault500:
		return synth(req, http.StatusInternalServerError, ""), nil
	case fault503, faultOutage503:
		return synth(req, http.StatusServiceUnavailable, ""), nil
	}
	if delay > p.timeout {
		p.late.Add(1)
	}
	// The body is read now: the client may hang up while the request is held.
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	out := req.Clone(context.WithoutCancel(req.Context()))
	out.Body = io.NopCloser(bytes.NewReader(body))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), 30*time.Second)
	out = out.WithContext(ctx)
	if kind == faultDelayBefore {
		time.Sleep(delay)
	}
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		cancel()
		return nil, err
	}
	// The answer is read whole before the delay, so the upstream request is
	// complete (and its connection free) whatever the client does.
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if kind == faultDelayAfter {
		time.Sleep(delay)
	}
	return resp, nil
}

// synth is a SCIM error answer made by the proxy.
func synth(req *http.Request, status int, retryAfter string) *http.Response {
	body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","detail":"injected by the chaos proxy"}`, status)
	h := http.Header{"Content-Type": {"application/scim+json"}}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}

// Counts returns the faults injected so far by kind, plus the requests
// seen and the delays longer than the client's timeout.
func (p *faultProxy) Counts() (byKind [numFaults]int64, requests, late int64) {
	for i := range byKind {
		byKind[i] = p.counts[i].Load()
	}
	return byKind, p.requests.Load(), p.late.Load()
}
