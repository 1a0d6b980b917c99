package engine

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/scimsync/scimsync/engine/state"
)

// indexBenchN is the id map of issue 15's memory target.
const indexBenchN = 100000

func indexBenchStore(b *testing.B) *state.Store {
	b.Helper()
	st, err := state.Open(b.TempDir(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	err = st.Update(func(tx *state.Tx) error {
		for i := range indexBenchN {
			id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
			ep, dn := "users", fmt.Sprintf("uid=bench-u%06d,ou=People,dc=example,dc=org", i)
			if i%500 == 0 {
				ep, dn = "groups", fmt.Sprintf("cn=bench-g%04d,ou=Groups,dc=example,dc=org", i/500)
			}
			if err := tx.Put(id, state.Mapping{Endpoint: ep, SCIMID: "2819c223-" + id[9:], DN: dn, Class: ep}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLoadIndex builds run's DN index over an id map of 100 000
// entries (Runner.loadIndex: the id map read once, each DN indexed), as
// "twomaps" did before dnIndex (NormalizeDN and strings.ToLower of each
// DN into two string maps, and a map of live ids) and as run does now.
// Beside the time and what a build allocates, heap-B/entry is what the
// index keeps: run holds it for its whole life.
func BenchmarkLoadIndex(b *testing.B) {
	st := indexBenchStore(b)
	builds := []struct {
		name  string
		build func() any
	}{
		{"twomaps", func() any {
			m := newTwoMaps()
			if err := st.Range(func(_ string, mp state.Mapping) bool {
				if mp.SCIMID != "" {
					m.add(mp.DN, dnRef{endpoint: mp.Endpoint, id: mp.SCIMID})
				}
				return true
			}); err != nil {
				b.Fatal(err)
			}
			return m
		}},
		{"dnindex", func() any {
			r := &Runner{Store: st}
			if err := r.loadIndex(); err != nil {
				b.Fatal(err)
			}
			return r.dns
		}},
	}
	for _, bb := range builds {
		b.Run(bb.name, func(b *testing.B) {
			h0 := heapInUse()
			kept := bb.build()
			h1 := heapInUse()
			runtime.KeepAlive(kept)
			kept = nil
			b.ReportAllocs()
			for b.Loop() {
				kept = bb.build()
			}
			runtime.KeepAlive(kept)
			b.ReportMetric(float64(h1-h0)/indexBenchN, "heap-B/entry")
		})
	}
}

// BenchmarkResolveDN looks up the DN of a member (as a group's change
// resolves each of its members) in the index of 100 000, as spelled in
// the directory: before (byRaw's strings.ToLower and a string map) and
// now.
func BenchmarkResolveDN(b *testing.B) {
	x, m := newDNIndex(), newTwoMaps()
	dns := make([]string, indexBenchN)
	for i := range dns {
		dns[i] = fmt.Sprintf("uid=bench-u%06d,ou=People,dc=example,dc=org", i)
		ref := dnRef{endpoint: "users", id: fmt.Sprintf("2819c223-%012x", i)}
		x.add(dns[i], ref)
		m.add(dns[i], ref)
	}
	for _, impl := range []struct {
		name   string
		lookup func(string) (dnRef, bool)
	}{{"twomaps", m.lookup}, {"dnindex", x.lookup}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := impl.lookup(dns[i%len(dns)]); !ok {
					b.Fatal("not found")
				}
				i += 7919
			}
		})
	}
}
