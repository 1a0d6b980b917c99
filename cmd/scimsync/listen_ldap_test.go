package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// faultProxy passes requests to the SCIM test server, or answers them
// itself: 429 for the next throttle requests, 503 while down.
type faultProxy struct {
	URL      string
	throttle atomic.Int32
	down     atomic.Bool
}

func newFaultProxy(t *testing.T, env scimtest.Env) *faultProxy {
	t.Helper()
	target, err := url.Parse(env.URL)
	must(t, err)
	p := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case p.down.Load():
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"down for the test"}`)
			return
		case r.Method != http.MethodGet && p.throttle.Add(-1) >= 0:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + target.Path
	return p
}

// scrapeMetrics reads /metrics and parses it with the Prometheus text
// parser.
func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricSum is the sum of the values of family name's metrics whose
// labels include every name=value pair given (a histogram: its count).
func metricSum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			ok := false
			for _, l := range m.GetLabel() {
				ok = ok || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// probe returns the status of GET addr+path.
func probe(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunListenMetrics runs `scimsync run --listen 127.0.0.1:0` with the
// shipped syncrepl pipe against the shared slapd and the SCIM test server
// (through a proxy), makes changes in LDAP, and checks the counters of
// /metrics, parsed with the Prometheus text parser, against them: changes
// read and applied by class, operation and outcome, SCIM requests by
// method and status with their latency, a 429 and its retry. Then the
// proxy plays a SCIM outage: a change made meanwhile waits, /readyz turns
// 503 (and scimsync_outage{service="scim"} 1) while /healthz stays 200;
// when the service is back the change goes through and /readyz is 200.
func TestRunListenMetrics(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("mx")
	srv := shared.Subtree(t, c, prefix)
	p := newLDAPPipe(t, srv)
	p.cleanUsers(prefix)
	proxy := newFaultProxy(t, p.env)
	for i, kv := range p.environ {
		if strings.HasPrefix(kv, "SCIM_URL=") {
			p.environ[i] = "SCIM_URL=" + proxy.URL
		}
	}
	p.mustRun("set-startpoint", "--end")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := p.command(ctx, "run", "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	var logs syncBuffer
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Msg, "serving /metrics") {
				addrc <- line.Addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatalf("no listen address logged\n%s", logs.String())
	}
	// Ready once the run has started (the directory answered).
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { code, _ := probe(t, addr, "/readyz"); return code == 200 }, &logs)

	// One create is throttled once (429, Retry-After: 0) and retried.
	proxy.throttle.Store(1)
	var dns []string
	for i := range 3 {
		dns = append(dns, ldapAddUser(t, c, srv, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("u%d@example.com", i)))
	}
	ldapDo(t, "modify", c.Modify(modifyReq(dns[0], "title", "Engineer")))
	ldapDo(t, "delete", c.Del(ldap.NewDelRequest(dns[2], nil)))

	var fams map[string]*dto.MetricFamily
	waitFor(t, 60*time.Second, "5 changes counted", func() bool {
		fams = scrapeMetrics(t, addr)
		return metricSum(fams, "scimsync_changes_total") >= 5
	}, &logs)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"scimsync_changes_read_total", []string{"op", "add"}, 3},
		{"scimsync_changes_read_total", []string{"op", "modify"}, 1},
		{"scimsync_changes_read_total", []string{"op", "delete"}, 1},
		{"scimsync_changes_total", []string{"class", "people", "op", "add", "outcome", "created"}, 3},
		{"scimsync_changes_total", []string{"class", "people", "op", "modify", "outcome", "updated"}, 1},
		{"scimsync_changes_total", []string{"class", "people", "op", "delete", "outcome", "deleted"}, 1},
		{"scimsync_changes_total", nil, 5},
		{"scimsync_scim_requests_total", []string{"method", "POST", "status", "201"}, 3},
		{"scimsync_scim_requests_total", []string{"method", "POST", "status", "429"}, 1},
		{"scimsync_scim_requests_total", []string{"method", "PATCH"}, 1},
		{"scimsync_scim_requests_total", []string{"method", "DELETE", "status", "204"}, 1},
		{"scimsync_scim_request_duration_seconds", []string{"method", "POST"}, 4},
		{"scimsync_scim_retries_total", nil, 1},
		{"scimsync_scim_throttled_total", nil, 1},
		{"scimsync_parked_changes", nil, 0},
		{"scimsync_outage", []string{"service", "scim"}, 0},
		{"scimsync_id_map_resources", []string{"endpoint", "Users"}, 2},
	}
	for _, tt := range tests {
		if got := metricSum(fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if metricSum(fams, "scimsync_scim_request_duration_seconds") != metricSum(fams, "scimsync_scim_requests_total") {
		t.Errorf("latency observations %v != requests %v", metricSum(fams, "scimsync_scim_request_duration_seconds"),
			metricSum(fams, "scimsync_scim_requests_total"))
	}
	if _, ok := fams["scimsync_checkpoint_age_seconds"]; !ok {
		t.Error("no scimsync_checkpoint_age_seconds")
	}
	// The sync log: one line per change with class, attribute names, PATCH
	// operations, attempts and time; never a value.
	var updated map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"updated"`) {
			must(t, json.Unmarshal([]byte(line), &updated))
		}
	}
	if updated["class"] != "people" || fmt.Sprint(updated["attrs"]) != "[title]" || updated["patchOps"] != 1.0 ||
		updated["attempts"] != 1.0 || updated["ms"] == nil || updated["endpoint"] != "Users" || updated["id"] == "" ||
		strings.Contains(logs.String(), "Engineer") {
		t.Errorf("the update's log line: %v", updated)
	}

	// A SCIM outage: not ready, still alive; ready again once it ends.
	proxy.down.Store(true)
	ldapDo(t, "modify", c.Modify(modifyReq(dns[1], "title", "Manager")))
	waitFor(t, 60*time.Second, "/readyz 503 during the outage", func() bool {
		code, body := probe(t, addr, "/readyz")
		return code == 503 && strings.Contains(body, "SCIM")
	}, &logs)
	if code, _ := probe(t, addr, "/healthz"); code != 200 {
		t.Errorf("/healthz during the outage: %d", code)
	}
	if v := metricSum(scrapeMetrics(t, addr), "scimsync_outage", "service", "scim"); v != 1 {
		t.Errorf("scimsync_outage{service=scim} during the outage = %v", v)
	}
	proxy.down.Store(false)
	waitFor(t, 90*time.Second, "/readyz 200 after the outage", func() bool {
		code, _ := probe(t, addr, "/readyz")
		return code == 200
	}, &logs)
	fams = scrapeMetrics(t, addr)
	if got := metricSum(fams, "scimsync_changes_total", "outcome", "updated"); got != 2 {
		t.Errorf("updates after the outage: %v, want 2", got)
	}
	if metricSum(fams, "scimsync_scim_requests_total", "status", "503") < 1 || metricSum(fams, "scimsync_change_waits_total") < 1 {
		t.Errorf("the outage's 503s or waits are not counted")
	}
}

// waitFor polls cond until it holds, for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s\nrun's log:\n%s", limit, what, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRunMassDeleteGuard: `run` stops at the delete that goes over
// --max-deletes (exit 3, a message that says what to check), having sent
// only the deletes within the limit and leaving the checkpoint before the
// others; a later run without --allow-deletes stops at its first delete
// (the marker beside the state file); --allow-deletes lets them through.
func TestRunMassDeleteGuard(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("md")
	srv := shared.Subtree(t, c, prefix)
	p := newLDAPPipe(t, srv)
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")
	var dns []string
	for i := range 6 {
		dns = append(dns, ldapAddUser(t, c, srv, fmt.Sprintf("%s-%d", prefix, i), "m@example.com"))
	}
	p.mustRun("run", "--once")
	if n := len(p.users(prefix)); n != 6 {
		t.Fatalf("%d users after the first run, want 6", n)
	}
	for _, dn := range dns[:5] {
		ldapDo(t, "delete", c.Del(ldap.NewDelRequest(dn, nil)))
	}

	code, _, stderr := p.run("run", "--once", "--max-deletes", "3")
	if code != exitDeletesHeld || !strings.Contains(stderr, "stopped at delete 4 within 10m0s") ||
		!strings.Contains(stderr, "--allow-deletes") || !strings.Contains(stderr, "base DN") {
		t.Fatalf("run over the limit: exit %d\n%s", code, stderr)
	}
	if n := len(p.users(prefix)); n != 3 {
		t.Fatalf("%d users left after the stop, want 3 (3 deletes within the limit)", n)
	}
	marker := filepath.Join(p.state, "") // the marker sits beside the state file
	matches, _ := filepath.Glob(filepath.Join(marker, "*.deletes-held"))
	if len(matches) != 1 {
		t.Fatalf("no marker in %s: %v", p.state, matches)
	}

	code, _, stderr = p.run("run", "--once")
	if code != exitDeletesHeld || !strings.Contains(stderr, "an earlier run was stopped by the mass-delete guard") {
		t.Fatalf("run after the stop: exit %d\n%s", code, stderr)
	}
	if n := len(p.users(prefix)); n != 3 {
		t.Fatalf("%d users after a run that should have stopped at its first delete, want 3", n)
	}

	p.mustRun("run", "--once", "--allow-deletes")
	if users := p.users(prefix); len(users) != 1 {
		t.Fatalf("%d users after --allow-deletes, want 1", len(users))
	}
	if matches, _ := filepath.Glob(filepath.Join(marker, "*.deletes-held")); len(matches) != 0 {
		t.Errorf("marker left after --allow-deletes: %v", matches)
	}
}

// TestResyncEmptyBase: a resync whose base DN was changed to an empty
// subtree stops before reading anything (exit 1, the message names the
// counts and what to check) and writes nothing; --allow-deletes lets it go.
// The first resync shows the summary per class.
func TestResyncEmptyBase(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("eb")
	srv := shared.Subtree(t, c, prefix)
	empty := shared.Subtree(t, c, prefix+"-empty")
	p := newLDAPPipe(t, srv)
	p.cleanUsers(prefix)
	for i := range 15 {
		ldapAddUser(t, c, srv, fmt.Sprintf("%s-%02d", prefix, i), "e@example.com")
	}
	stderr := p.mustRun("resync")
	if !strings.Contains(stderr, "  class people: 15 created, 0 updated, 0 unchanged, 0 skipped") {
		t.Errorf("no summary per class:\n%s", stderr)
	}
	if strings.Contains(stderr, "  class : ") {
		t.Errorf("a summary row for no class (the out-of-scope entries, on the summary line already):\n%s", stderr)
	}
	// What resync learnt of the service is logged by the command's logger,
	// at the level and in the format asked for (it went to the process's
	// default logger, at info whatever --log-level said).
	if _, _, errJSON := p.run("resync", "--log-format", "json", "--log-level", "info"); !strings.Contains(errJSON, `"msg":"resync: the SCIM service's ServiceProviderConfig"`) {
		t.Errorf("no ServiceProviderConfig line in the JSON log:\n%s", errJSON)
	}
	for i, kv := range p.environ {
		if strings.HasPrefix(kv, "LDAP_BASE=") {
			p.environ[i] = "LDAP_BASE=" + empty.Base
		}
	}
	code, _, stderr := p.run("resync")
	if code != exitFail || !strings.Contains(stderr, "stopped before reading anything: the source holds ") ||
		!strings.Contains(stderr, "entries under its base DNs, but the id map knows 15 resources this pipe manages") ||
		!strings.Contains(stderr, "empty subtree") || !strings.Contains(stderr, "--allow-deletes") {
		t.Fatalf("resync of an empty subtree: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "resync: ") && strings.Contains(stderr, "entries in") {
		t.Errorf("the stopped resync ran:\n%s", stderr)
	}
	code, _, stderr = p.run("resync", "--allow-deletes")
	if code != exitOK || !strings.Contains(stderr, "created, 0 updated") {
		t.Fatalf("resync --allow-deletes: exit %d\n%s", code, stderr)
	}
	if n := len(p.users(prefix)); n != 15 {
		t.Errorf("%d users, want 15: resync deletes nothing", n)
	}
}
