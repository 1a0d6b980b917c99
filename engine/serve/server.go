package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness says whether the run is ready: nil, or why not. It is called
// for each /readyz request and must answer quickly.
type Readiness func(ctx context.Context) error

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen starts serving on addr (host:port; ":0" picks a port). m may be
// nil (no /metrics); ready nil means always ready.
func Listen(addr string, m *Metrics, ready Readiness, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{Handler: Handler(m, ready, log), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("--listen: serving stopped", "addr", addr, "err", err.Error())
		}
	}()
	return s, nil
}

// Addr is the address served (with the port chosen for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving, letting requests in flight finish for a moment.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Handler is the mux of Listen: /metrics, /healthz, /readyz.
func Handler(m *Metrics, ready Readiness, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
			ErrorLog: slogPrinter{log}, ErrorHandling: promhttp.ContinueOnError}))
	}
	// /healthz answers as long as the process serves: a liveness probe
	// that restarted a run waiting out an outage would only add a restart
	// to the outage.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if ready != nil {
			if err := ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// slogPrinter is promhttp's error log, through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("--listen: /metrics: " + fmt.Sprint(v...)) }

// Probe is a check of a service that is run at most once per Every and
// otherwise answered from the last result, so that a probe polled every
// second does not poll the service every second.
type Probe struct {
	Check func(ctx context.Context) error
	Every time.Duration // default 15s

	mu   sync.Mutex
	last time.Time
	err  error
}

// Err runs the check when the last result is older than Every.
func (p *Probe) Err(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	every := p.Every
	if every <= 0 {
		every = 15 * time.Second
	}
	if !p.last.IsZero() && time.Since(p.last) < every {
		return p.err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p.err, p.last = p.Check(ctx), time.Now()
	return p.err
}
