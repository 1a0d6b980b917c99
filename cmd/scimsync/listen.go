package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/serve"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
)

// monitor is run's --listen: the metrics, the HTTP server, and the hooks
// that feed them. Its zero value (no --listen) does nothing.
type monitor struct {
	metrics *serve.Metrics
	server  *serve.Server
	runner  atomic.Pointer[engine.Runner] // set once the run starts: ready from then on
	probe   *serve.Probe
}

// listenFlag adds --listen.
func listenFlag(fs *pflag.FlagSet) *string {
	return fs.String("listen", "", "serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9464 (no authentication: keep it on loopback or a private network)")
}

// startMonitor starts serving on addr ("" for none).
func startMonitor(addr string, st *state.Store, log *slog.Logger) (*monitor, error) {
	m := &monitor{}
	if addr == "" {
		return m, nil
	}
	m.metrics = serve.NewMetrics(serve.Scraped{
		Store: st,
		Health: func() engine.RunHealth {
			if r := m.runner.Load(); r != nil {
				return r.Health()
			}
			return engine.RunHealth{}
		},
		Lag: func(ctx context.Context) (int64, float64, bool) {
			r := m.runner.Load()
			if r == nil {
				return 0, 0, false
			}
			lag, err := runnerLag(ctx, r)
			return lag.Changes, lag.Seconds, err == nil
		},
		Waits: func() int64 {
			if r := m.runner.Load(); r != nil {
				return r.Stats.Waits.Load()
			}
			return 0
		},
	})
	srv, err := serve.Listen(addr, m.metrics, m.ready, log)
	if err != nil {
		return nil, err
	}
	m.server = srv
	log.Info("serving /metrics, /healthz and /readyz", "addr", srv.Addr())
	return m, nil
}

// clientOptions are the SCIM client's hooks for the metrics.
func (m *monitor) clientOptions() []scim.Option {
	if m.metrics == nil {
		return nil
	}
	return []scim.Option{scim.WithObserver(m.metrics.Request), scim.WithRetry(scim.Retry{OnRetry: m.metrics.Retry})}
}

// started wires the runner in: its changes are counted and /readyz may
// say ready. client is probed for /readyz.
func (m *monitor) started(r *engine.Runner, client *scim.Client) {
	if m.metrics == nil {
		return
	}
	r.Source = m.metrics.Source(r.Source)
	r.Observe = m.metrics.Change
	m.probe = &serve.Probe{Check: func(ctx context.Context) error { return scimReachable(ctx, client) }}
	m.runner.Store(r)
}

// ready is /readyz: the run has started (its directory answered), it waits
// out no outage (the source's connection to the directory included: a
// dropped change stream that is reconnecting is not ready), and the SCIM
// service answers.
func (m *monitor) ready(ctx context.Context) error {
	r := m.runner.Load()
	if r == nil {
		return errors.New("starting: waiting for the directory")
	}
	if h := r.Health(); h.Outage != "" {
		msg := h.Outage + " is unavailable since " + h.OutageSince.UTC().Format("2006-01-02T15:04:05Z") + ": changes wait"
		if h.OutageErr != "" {
			msg += " (" + h.OutageErr + ")"
		}
		return errors.New(msg)
	}
	return m.probe.Err(ctx)
}

// runnerLag measures how far the run's saved checkpoint is behind the
// directory, through its source (which measures on connections of its own
// and caches for source.LagCache). The checkpoint, not the source's read
// position, is measured: changes read but still queued or waiting out an
// outage are behind too.
func runnerLag(ctx context.Context, r *engine.Runner) (source.Lag, error) {
	cp, err := r.Store.Checkpoint()
	if err != nil {
		return source.Lag{}, err
	}
	return source.LagOf(ctx, r.Source, cp)
}

// scimReachable reports whether the SCIM service answers: any answer but
// a 5xx will do (a 401 is the service answering; the run reports it).
func scimReachable(ctx context.Context, c *scim.Client) error {
	_, err := c.Get(ctx, "/ServiceProviderConfig")
	var se *scim.Error
	if err == nil || errors.As(err, &se) && se.Status < http.StatusInternalServerError {
		return nil
	}
	return errors.New("the SCIM service does not answer: " + err.Error())
}

// close stops serving.
func (m *monitor) close() {
	if m.server != nil {
		_ = m.server.Close()
	}
}
