// Package serve is what `scimsync run --listen ADDR` serves over HTTP for
// monitoring: /metrics in the Prometheus text format, /healthz (the
// process is alive) and /readyz (the run has started, its services answer
// and it is not waiting out an outage), for Prometheus, systemd watchdogs
// and Kubernetes probes.
//
// The metrics come from hooks the engine offers, so that neither the
// engine nor the SCIM client knows of Prometheus: engine.Runner.Observe
// (what became of each change), scim.WithObserver (each HTTP request,
// with its status and latency), scim.Retry.OnRetry (retries), a wrapper
// around the source (changes read), and values read at each scrape (the
// state store's parked changes, checkpoint and id map; the runner's
// outage state).
//
// Nothing served here carries a value from the directory or the SCIM
// service: labels are class, endpoint, operation, outcome, HTTP method and
// status. The listener is meant for loopback or a private network; it has
// no authentication of its own.
package serve
