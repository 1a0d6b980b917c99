//go:build ignore

// delayproxy puts a SaaS-like round trip between a client and the SCIM test
// server, for the latency benchmark (testdata/bench/latency.sh): every request
// it forwards is held RTT/2 before it is sent on and RTT/2 after its answer
// comes back, so each request costs one extra round trip of RTT. Requests are
// delayed independently, never queued behind each other: with C requests in
// flight at a time, R requests take at least R × RTT ÷ C (the benchmark's
// floor), which is how a client's time is spent against a service 50 ms away.
// Connections are kept alive on both sides (the client's to the proxy, the
// proxy's pool to the server), as they would be to a real service.
//
// It also counts what passes through, by method and shape (a GET with a
// filter, a GET of a list page, a GET by id), exactly and for every request:
// the benchmark's request counts. Its own endpoints are not forwarded and not
// delayed:
//
//	GET  /_proxy/stats  -> {"requests":N,"byKind":{"GET filter":N,"POST":N,...},"maxInFlight":N}
//	POST /_proxy/reset  -> zeroes the counters
//
// Only loopback targets are accepted: this is a test tool.
//
//	go run testdata/bench/delayproxy.go -target http://127.0.0.1:8880 [-rtt 50ms] [-listen 127.0.0.1:0]
//	go run testdata/bench/delayproxy.go -rtt 50ms -print-rtt   # 0.05
//
// The first line on stdout is "listening http://ADDR" once it accepts connections.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// counter tallies forwarded requests by kind.
type counter struct {
	mu       sync.Mutex
	byKind   map[string]int64
	total    int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

// kind names a request's shape: what matters when counting what a sync costs.
func kind(r *http.Request) string {
	if r.Method != http.MethodGet {
		return r.Method
	}
	switch {
	case r.URL.Query().Has("filter"):
		return "GET filter"
	case strings.HasSuffix(strings.TrimRight(r.URL.Path, "/"), "/Users"),
		strings.HasSuffix(strings.TrimRight(r.URL.Path, "/"), "/Groups"):
		return "GET list"
	case strings.Contains(r.URL.Path, "/Users/"), strings.Contains(r.URL.Path, "/Groups/"):
		return "GET id"
	}
	return "GET other" // ServiceProviderConfig, Schemas, ...
}

func (c *counter) add(r *http.Request) {
	c.mu.Lock()
	c.byKind[kind(r)]++
	c.total++
	c.mu.Unlock()
}

// delayed is a RoundTripper that holds each request half a round trip on
// the way out and half on the way back, on its own: concurrency is never
// limited here.
type delayed struct {
	rtt  time.Duration
	next http.RoundTripper
	c    *counter
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	d.c.add(r)
	n := d.c.inFlight.Add(1)
	defer d.c.inFlight.Add(-1)
	for m := d.c.maxIn.Load(); n > m && !d.c.maxIn.CompareAndSwap(m, n); m = d.c.maxIn.Load() {
	}
	if err := sleep(r.Context(), d.rtt/2); err != nil {
		return nil, err
	}
	resp, err := d.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if err := sleep(r.Context(), d.rtt-d.rtt/2); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func main() {
	target := flag.String("target", "", "the server to forward to, e.g. http://127.0.0.1:8880 (loopback only)")
	rtt := flag.Duration("rtt", 50*time.Millisecond, "round trip added to every request")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	printRTT := flag.Bool("print-rtt", false, "print -rtt in seconds and exit (for the benchmark's arithmetic)")
	flag.Parse()
	if *printRTT {
		fmt.Println(rtt.Seconds())
		return
	}
	loopback := regexp.MustCompile(`^(https?://)?(127\.0\.0\.1|localhost|\[::1\])(:|/|$)`)
	if !loopback.MatchString(*target) || !loopback.MatchString(*listen) {
		fmt.Fprintln(os.Stderr, "delayproxy: -target and -listen must be loopback addresses")
		os.Exit(2)
	}
	to, err := url.Parse(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(2)
	}
	c := &counter{byKind: map[string]int64{}}
	upstream := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024, // every client connection can keep one upstream connection alive
		IdleConnTimeout:     90 * time.Second,
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			// The server builds meta.location from Host: keep the proxy's, so
			// that a client following a location still goes through the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport: &delayed{rtt: *rtt, next: upstream, c: c},
		ErrorLog:  log.New(os.Stderr, "delayproxy: ", log.LstdFlags),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_proxy/stats", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		out := map[string]any{"requests": c.total, "byKind": c.byKind, "maxInFlight": c.maxIn.Load(), "rttMs": rtt.Milliseconds()}
		data, _ := json.Marshal(out)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(data, '\n'))
	})
	mux.HandleFunc("POST /_proxy/reset", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		c.byKind, c.total = map[string]int64{}, 0
		c.maxIn.Store(0)
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", proxy)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Printf("listening http://%s\n", ln.Addr())
	os.Stdout.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(1)
	}
}
