package serve

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
)

// Metrics are the Prometheus metrics of one run. Make them with
// NewMetrics, wire their hooks (Change, Request, Retry, Source) into the
// run, and serve Registry.
type Metrics struct {
	Registry *prometheus.Registry

	read      *prometheus.CounterVec
	changes   *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	retries   prometheus.Counter
	throttled prometheus.Counter
	scr       *scraper
}

// Lagger is what the Lag hook of Scraped answers: how far the run's
// checkpoint is behind the directory's newest change, as the directory
// tells it (source.Lag says what each source kind can tell). changes is
// source.LagUnknown (-1) when the source can tell the seconds but not the
// changes (syncrepl without a readable accesslog): scimsync_lag_changes is
// then left out and scimsync_lag_seconds served. ok false means it cannot
// tell now (the kind never tells, no checkpoint yet, the directory did not
// answer): both gauges are left out.
type Lagger interface {
	Lag(ctx context.Context) (changes int64, seconds float64, ok bool)
}

// Scraped is what Metrics read at each scrape rather than count as they
// happen. Every field is optional.
type Scraped struct {
	Store  *state.Store                                 // parked changes, checkpoint age, id map per endpoint
	Health func() engine.RunHealth                      // outage state, last change applied
	Waits  func() int64                                 // changes tried again after a temporary failure
	Lag    func(context.Context) (int64, float64, bool) // a Lagger's Lag (see Lagger for what each answer means)
}

// NewMetrics makes the metrics, registered in a registry of their own
// (with the Go runtime and process collectors, for the usual dashboards).
func NewMetrics(s Scraped) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.read = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scimsync_changes_read_total",
		Help: "Changes read from the source, by operation (add, modify, delete, modrdn).",
	}, []string{"op"})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scimsync_changes_total",
		Help: "What became of each change read: by the class that took it, the operation and the outcome " +
			"(created, updated, unchanged, deleted, deactivated, absent, out_of_scope, untouched, dropped, parked, healed).",
	}, []string{"class", "op", "outcome"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scimsync_scim_requests_total",
		Help: "HTTP requests sent to the SCIM service (each attempt), by method and status (\"error\" when no answer came).",
	}, []string{"method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "scimsync_scim_request_duration_seconds",
		Help:    "Time from sending a request to the SCIM service to reading its whole answer, by method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method"})
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimsync_scim_retries_total",
		Help: "Requests to the SCIM service sent again after a temporary failure (a 429, a 5xx, a timeout).",
	})
	m.throttled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimsync_scim_throttled_total",
		Help: "Answers 429 Too Many Requests from the SCIM service.",
	})
	m.scr = &scraper{s: s, since: time.Now()}
	m.Registry.MustRegister(m.read, m.changes, m.requests, m.latency, m.retries, m.throttled, m.scr,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Change counts what became of one change (engine.Runner.Observe).
func (m *Metrics) Change(rec engine.ChangeRecord) {
	m.changes.WithLabelValues(rec.Class, rec.Op, outcomeLabel(rec.Outcome)).Inc()
}

// outcomeLabel writes an outcome as a label value: "out of scope" is
// out_of_scope, as Prometheus label values usually are.
func outcomeLabel(o engine.Outcome) string {
	return strings.ReplaceAll(string(o), " ", "_")
}

// Request counts one HTTP request to the SCIM service and its latency
// (scim.WithObserver).
func (m *Metrics) Request(method string, status int, took time.Duration) {
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(method, code).Inc()
	m.latency.WithLabelValues(method).Observe(took.Seconds())
	if status == 429 {
		m.throttled.Inc()
	}
}

var _ scim.RequestObserver = (*Metrics)(nil).Request

// Retry counts one retry of a SCIM request (scim.Retry.OnRetry).
func (m *Metrics) Retry(int, error, time.Duration) { m.retries.Inc() }

// Source wraps a source so that each change read is counted.
func (m *Metrics) Source(src source.Source) source.Source { return &countingSource{Source: src, m: m} }

type countingSource struct {
	source.Source
	m *Metrics
}

func (c *countingSource) Next(ctx context.Context) (*source.Event, error) {
	e, err := c.Source.Next(ctx)
	if err == nil && (e.Kind == source.EventChange || e.Kind == source.EventDropped) && e.Change != nil {
		c.m.read.WithLabelValues(e.Change.Type.String()).Inc()
	}
	return e, err
}

// Unwrap is the source counted: source.LagOf and source.LinkOf look
// through the wrapper with it.
func (c *countingSource) Unwrap() source.Source { return c.Source }

var _ source.Unwrapper = (*countingSource)(nil)

// scraper reads, at each scrape, what is a state rather than a count.
type scraper struct {
	s Scraped

	mu         sync.Mutex
	since      time.Time // when the checkpoint was last seen to move (or the run started)
	checkpoint string
	seen       bool

	// The id map is counted by reading all of it; a count is reused until
	// it is older than idMapReuse times what it took, so that scrapes of a
	// large map spend at most about 2 % of the time counting.
	idMapCount map[string]int
	idMapAt    time.Time
	idMapTook  time.Duration
}

// idMapReuse: a count that took d is reused for idMapReuse×d.
const idMapReuse = 50

// idMap returns the id map's resources per endpoint, counted anew when
// the last count is too old for what counting costs.
func (s *scraper) idMap(st *state.Store, now time.Time) (map[string]int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idMapCount != nil && now.Sub(s.idMapAt) < idMapReuse*s.idMapTook {
		return s.idMapCount, true
	}
	perEndpoint, err := st.CountMapped()
	if err != nil {
		return nil, false
	}
	s.idMapCount, s.idMapAt, s.idMapTook = perEndpoint, now, time.Since(now)
	return perEndpoint, true
}

var (
	descParked = prometheus.NewDesc("scimsync_parked_changes",
		"Changes parked (failed for good, waiting in the failed-changes record).", nil, nil)
	descParkedOldest = prometheus.NewDesc("scimsync_parked_oldest_age_seconds",
		"Age of the oldest parked change; absent when none is parked.", nil, nil)
	descOutage = prometheus.NewDesc("scimsync_outage",
		"1 while the run waits out an outage of the service named (scim or directory), else 0.", []string{"service"}, nil)
	descCheckpointAge = prometheus.NewDesc("scimsync_checkpoint_age_seconds",
		"Seconds since the checkpoint last moved (as seen at scrapes, or since the run started): "+
			"read with scimsync_lag_* where the source tells them, or with changes being read.", nil, nil)
	descLastApplied = prometheus.NewDesc("scimsync_last_applied_timestamp_seconds",
		"When a change last went through to the SCIM service (Unix time); absent before the first.", nil, nil)
	descLagChanges = prometheus.NewDesc("scimsync_lag_changes",
		"Changes the directory holds after the run's checkpoint, as the directory tells it (changelog: lastChangeNumber "+
			"minus the checkpoint's; syncrepl: writes under the base in OpenLDAP's accesslog, at most 1000); "+
			"absent when the source cannot count them (dirsync, ldif, syncrepl without a readable accesslog).", nil, nil)
	descLagSeconds = prometheus.NewDesc("scimsync_lag_seconds",
		"Age of the oldest change after the run's checkpoint, 0 when there is none (syncrepl without a readable "+
			"accesslog: the time from the checkpoint's CSN to the directory's contextCSN); absent when the source cannot tell.", nil, nil)
	descIDMap = prometheus.NewDesc("scimsync_id_map_resources",
		"Resources in the id map (those this pipe manages), by endpoint; a large map is counted again once "+
			"the last count is 50 times as old as it took (every few seconds at 100 000 entries).", []string{"endpoint"}, nil)
	descWaits = prometheus.NewDesc("scimsync_change_waits_total",
		"Times a change was tried again after a temporary failure (the SCIM service or the directory unavailable).", nil, nil)
)

func (s *scraper) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descParked, descParkedOldest, descOutage, descCheckpointAge, descLastApplied,
		descLagChanges, descLagSeconds, descIDMap, descWaits} {
		ch <- d
	}
}

func (s *scraper) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	if st := s.s.Store; st != nil {
		if ps, err := st.ListParked(); err == nil {
			ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, float64(len(ps)))
			var oldest time.Time
			for _, p := range ps {
				if oldest.IsZero() || p.Time.Before(oldest) {
					oldest = p.Time
				}
			}
			if !oldest.IsZero() {
				ch <- prometheus.MustNewConstMetric(descParkedOldest, prometheus.GaugeValue, now.Sub(oldest).Seconds())
			}
		}
		if pos, err := st.Checkpoint(); err == nil {
			s.mu.Lock()
			if s.seen && pos != s.checkpoint {
				s.since = now
			}
			s.checkpoint, s.seen = pos, true
			age := now.Sub(s.since).Seconds()
			s.mu.Unlock()
			ch <- prometheus.MustNewConstMetric(descCheckpointAge, prometheus.GaugeValue, age)
		}
		if perEndpoint, ok := s.idMap(st, now); ok {
			for ep, n := range perEndpoint {
				ch <- prometheus.MustNewConstMetric(descIDMap, prometheus.GaugeValue, float64(n), ep)
			}
		}
	}
	if s.s.Health != nil {
		h := s.s.Health()
		scimDown, dirDown := 0.0, 0.0
		switch {
		case h.Outage == "":
		case strings.Contains(h.Outage, "SCIM"):
			scimDown = 1
		default:
			dirDown = 1
		}
		ch <- prometheus.MustNewConstMetric(descOutage, prometheus.GaugeValue, scimDown, "scim")
		ch <- prometheus.MustNewConstMetric(descOutage, prometheus.GaugeValue, dirDown, "directory")
		if !h.LastApplied.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastApplied, prometheus.GaugeValue, float64(h.LastApplied.UnixNano())/1e9)
		}
	}
	if s.s.Lag != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, secs, ok := s.s.Lag(ctx)
		cancel()
		if ok {
			if n >= 0 {
				ch <- prometheus.MustNewConstMetric(descLagChanges, prometheus.GaugeValue, float64(n))
			}
			ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, secs)
		}
	}
	if s.s.Waits != nil {
		ch <- prometheus.MustNewConstMetric(descWaits, prometheus.CounterValue, float64(s.s.Waits()))
	}
}
