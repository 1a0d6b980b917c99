package serve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// Scrape reads url's /metrics and parses it with the Prometheus text
// parser.
func Scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// Value is the value of the metric of family name whose labels are
// exactly labels (name=value pairs), and whether there is one.
func Value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels)/2 {
			continue
		}
		for _, l := range m.GetLabel() {
			found := false
			for i := 0; i+1 < len(labels); i += 2 {
				if labels[i] == l.GetName() && labels[i+1] == l.GetValue() {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// fakeSource reports the events it holds, then io.EOF.
type fakeSource struct{ events []*source.Event }

func (f *fakeSource) Next(context.Context) (*source.Event, error) {
	if len(f.events) == 0 {
		return nil, io.EOF
	}
	e := f.events[0]
	f.events = f.events[1:]
	return e, nil
}
func (f *fakeSource) Close() error { return nil }

// TestMetrics: each hook counts what it is told, the scrape-time values
// come from the store and the runner's health, and the text served parses.
func TestMetrics(t *testing.T) {
	st, err := state.Open(t.TempDir(), "p")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must(t, st.Put("a", state.Mapping{Endpoint: "Users", SCIMID: "1", DN: "uid=a"}))
	must(t, st.Put("b", state.Mapping{Endpoint: "Users", SCIMID: "2", DN: "uid=b"}))
	must(t, st.Put("g", state.Mapping{Endpoint: "Groups", SCIMID: "3", DN: "cn=g"}))
	_, err = st.Park(state.Parked{Key: "c", DN: "uid=c", Op: "add", Error: "400", Time: time.Now().Add(-time.Minute)})
	must(t, err)
	outage := engine.RunHealth{Outage: "the SCIM service", OutageSince: time.Now(), LastApplied: time.Unix(1700000000, 0)}
	m := NewMetrics(Scraped{Store: st, Health: func() engine.RunHealth { return outage }, Waits: func() int64 { return 7 },
		Lag: func(context.Context) (int64, float64, bool) { return 12, 3.5, true }})

	src := m.Source(&fakeSource{events: []*source.Event{
		{Kind: source.EventChange, Change: &lang.Change{Type: lang.Add, DN: "uid=a"}},
		{Kind: source.EventChange, Change: &lang.Change{Type: lang.Add, DN: "uid=b"}},
		{Kind: source.EventDropped, Change: &lang.Change{Type: lang.Delete, DN: "uid=x"}},
		{Kind: source.EventCheckpoint},
	}})
	for {
		if _, err := src.Next(context.Background()); err != nil {
			break
		}
	}
	for _, rec := range []engine.ChangeRecord{
		{Class: "people", Op: "add", Outcome: engine.Created},
		{Class: "people", Op: "add", Outcome: engine.Created},
		{Class: "people", Op: "modify", Outcome: engine.OutOfScope},
		{Op: "delete", Outcome: engine.DroppedChange},
		{Class: "groups", Op: "modify", Outcome: engine.ParkedChange},
	} {
		m.Change(rec)
	}
	m.Request("POST", 201, 20*time.Millisecond)
	m.Request("POST", 429, time.Millisecond)
	m.Request("PATCH", 0, time.Second)
	m.Retry(1, errors.New("x"), 0)

	srv, err := Listen("127.0.0.1:0", m, nil, nil)
	must(t, err)
	defer srv.Close()
	fams := Scrape(t, "http://"+srv.Addr())
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"scimsync_changes_read_total", []string{"op", "add"}, 2},
		{"scimsync_changes_read_total", []string{"op", "delete"}, 1},
		{"scimsync_changes_total", []string{"class", "people", "op", "add", "outcome", "created"}, 2},
		{"scimsync_changes_total", []string{"class", "people", "op", "modify", "outcome", "out_of_scope"}, 1},
		{"scimsync_changes_total", []string{"class", "", "op", "delete", "outcome", "dropped"}, 1},
		{"scimsync_changes_total", []string{"class", "groups", "op", "modify", "outcome", "parked"}, 1},
		{"scimsync_scim_requests_total", []string{"method", "POST", "status", "201"}, 1},
		{"scimsync_scim_requests_total", []string{"method", "POST", "status", "429"}, 1},
		{"scimsync_scim_requests_total", []string{"method", "PATCH", "status", "error"}, 1},
		{"scimsync_scim_request_duration_seconds", []string{"method", "POST"}, 2},
		{"scimsync_scim_retries_total", nil, 1},
		{"scimsync_scim_throttled_total", nil, 1},
		{"scimsync_parked_changes", nil, 1},
		{"scimsync_outage", []string{"service", "scim"}, 1},
		{"scimsync_outage", []string{"service", "directory"}, 0},
		{"scimsync_last_applied_timestamp_seconds", nil, 1700000000},
		{"scimsync_lag_changes", nil, 12},
		{"scimsync_lag_seconds", nil, 3.5},
		{"scimsync_id_map_resources", []string{"endpoint", "Users"}, 2},
		{"scimsync_id_map_resources", []string{"endpoint", "Groups"}, 1},
		{"scimsync_change_waits_total", nil, 7},
	}
	for _, tt := range tests {
		got, ok := Value(fams, tt.name, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if age, ok := Value(fams, "scimsync_parked_oldest_age_seconds"); !ok || age < 59 {
		t.Errorf("scimsync_parked_oldest_age_seconds = %v, %v", age, ok)
	}
	if _, ok := Value(fams, "scimsync_checkpoint_age_seconds"); !ok {
		t.Error("no scimsync_checkpoint_age_seconds")
	}
}

// TestProbes: /healthz always answers; /readyz says why it is not ready
// with a 503.
func TestProbes(t *testing.T) {
	var notReady error
	srv, err := Listen("127.0.0.1:0", nil, func(context.Context) error { return notReady }, nil)
	must(t, err)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path     string
		notReady error
		code     int
		body     string
	}{
		{"/healthz", nil, 200, "ok\n"},
		{"/readyz", nil, 200, "ready\n"},
		{"/healthz", errors.New("the SCIM service is unavailable"), 200, "ok\n"},
		{"/readyz", errors.New("the SCIM service is unavailable"), 503, "not ready: the SCIM service is unavailable\n"},
		{"/metrics", nil, 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		notReady = tt.notReady
		if code, body := get(tt.path); code != tt.code || body != tt.body {
			t.Errorf("%s (not ready: %v): %d %q, want %d %q", tt.path, tt.notReady, code, body, tt.code, tt.body)
		}
	}
}

// TestProbeCaches: a probe runs its check at most once per Every.
func TestProbeCaches(t *testing.T) {
	n := 0
	p := &Probe{Every: time.Hour, Check: func(context.Context) error { n++; return errors.New("down") }}
	for range 3 {
		if err := p.Err(context.Background()); err == nil {
			t.Fatal("no error")
		}
	}
	if n != 1 {
		t.Errorf("checked %d times, want 1", n)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLagGauges: what the Lag hook answers decides which lag gauges are
// served: both, the seconds alone when the changes are unknown
// (source.LagUnknown), none when the source cannot tell.
func TestLagGauges(t *testing.T) {
	tests := []struct {
		name                 string
		changes              int64
		seconds              float64
		ok                   bool
		wantChanges, wantSec bool
	}{
		{"both", 4, 2.5, true, true, true},
		{"caught up", 0, 0, true, true, true},
		{"changes unknown", source.LagUnknown, 2.5, true, false, true},
		{"cannot tell", 0, 0, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(Scraped{Lag: func(context.Context) (int64, float64, bool) { return tt.changes, tt.seconds, tt.ok }})
			srv, err := Listen("127.0.0.1:0", m, nil, nil)
			must(t, err)
			defer srv.Close()
			fams := Scrape(t, "http://"+srv.Addr())
			n, okN := Value(fams, "scimsync_lag_changes")
			s, okS := Value(fams, "scimsync_lag_seconds")
			if okN != tt.wantChanges || okS != tt.wantSec || okN && n != float64(tt.changes) || okS && s != tt.seconds {
				t.Errorf("scimsync_lag_changes %v (%v), scimsync_lag_seconds %v (%v)", n, okN, s, okS)
			}
		})
	}
}

// linkedSource is a source whose connection is down.
type linkedSource struct{ fakeSource }

func (linkedSource) Link() source.LinkState { return source.LinkState{Down: true, Err: "gone"} }

// TestCountingSourceUnwraps: the metrics' wrapper does not hide the
// source's link (nor its lag) from source.LinkOf and source.LagOf.
func TestCountingSourceUnwraps(t *testing.T) {
	m := NewMetrics(Scraped{})
	src := m.Source(&linkedSource{})
	if l, ok := source.LinkOf(src); !ok || !l.Down || l.Err != "gone" {
		t.Errorf("LinkOf through the wrapper: %+v, %v", l, ok)
	}
	if _, err := source.LagOf(context.Background(), src, ""); !errors.Is(err, source.ErrLagUnsupported) {
		t.Errorf("LagOf: %v", err)
	}
}
