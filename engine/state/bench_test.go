package state

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkPut measures id-map writes as run's workers make them: each
// writer stores one mapping and waits until it is durable. "solo" is one
// transaction (and its fsyncs) per write, which is what Put did before group
// commit; "put" is Put as it is. With one writer the two should be alike;
// with 8 a group commit carries many writes per fsync.
func BenchmarkPut(b *testing.B) {
	for _, writers := range []int{1, 8} {
		for _, mode := range []string{"solo", "put"} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, mode), func(b *testing.B) {
				s, err := Open(b.TempDir(), "bench")
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				put := s.Put
				if mode == "solo" {
					put = func(id string, m Mapping) error {
						return s.Update(func(t *Tx) error { return t.Put(id, m) })
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				for w := range writers {
					n := b.N / writers
					if w < b.N%writers {
						n++
					}
					wg.Go(func() {
						for i := range n {
							id := fmt.Sprintf("w%d-%08d", w, i)
							m := Mapping{Endpoint: "users", SCIMID: "2819c223-7f76-453a-919d-" + id, DN: "uid=" + id + ",ou=people,dc=example,dc=org", Class: "people"}
							if err := put(id, m); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				if mode == "put" {
					b.ReportMetric(float64(b.N)/float64(s.c.commits.Load()), "writes/commit")
				}
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
			})
		}
	}
}
