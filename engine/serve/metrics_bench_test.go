package serve

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimsync/scimsync/engine/state"
)

// BenchmarkScrapeIDMap measures a /metrics scrape of a run whose id map
// holds 100 000 entries: "count" counts the map at every scrape (what a
// scrape cost before counts were reused), "reuse" is a scrape as it is,
// scraped back to back (the worst case for reuse: the count is redone
// whenever it is older than idMapReuse times what it took).
func BenchmarkScrapeIDMap(b *testing.B) {
	st, err := state.Open(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const n = 100000
	err = st.Update(func(t *state.Tx) error {
		for i := range n {
			id := fmt.Sprintf("e%08d", i)
			ep := "Users"
			if i%50 == 0 {
				ep = "Groups"
			}
			if err := t.Put(id, state.Mapping{Endpoint: ep, SCIMID: "2819c223-7f76-453a-919d-" + id,
				DN: "uid=" + id + ",ou=people,dc=example,dc=org", Class: "people"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"count", "reuse"} {
		b.Run(mode, func(b *testing.B) {
			m := NewMetrics(Scraped{Store: st})
			h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
			sc := m.scr
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if mode == "count" {
					sc.mu.Lock()
					sc.idMapCount = nil
					sc.mu.Unlock()
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				_, _ = io.Copy(io.Discard, rec.Body)
			}
			b.StopTimer()
			sc.mu.Lock()
			b.ReportMetric(float64(sc.idMapTook.Microseconds())/1000, "ms/count")
			sc.mu.Unlock()
		})
	}
}
