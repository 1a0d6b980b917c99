//go:build ignore

// runheap is `scimsync run --once` as cmd/scimsync/run.go wires it (the pipe, its state,
// the SCIM client, the source and its entry reader, an engine.Runner; no control socket, no
// --listen, no delete guard), in a process that watches its own heap: where `run` has no
// profiling flag, this is how idmap-rss.sh finds what fills run's memory over a large id
// map. Every 20 ms it reads the live heap of the last GC (runtime/metrics); each time that
// reaches a new high it writes a heap profile (in-use figures as of that GC) to -out, and
// at the end the same profile again to -out.end (alloc_space there: everything run
// allocated). It prints the peak live heap, the peak heap in use and the process's VmHWM.
//
// Build it in the tree whose engine is to be measured (imports resolve from the current
// directory's module), then read the profile with go tool pprof:
//
//	(cd /tmp/wt && go build -o /tmp/runheap /work/main/testdata/bench/runheap.go)
//	/tmp/runheap -pipe scripts/openldap-to-scim.pipe -state-dir DIR -out heap.pprof
//	go tool pprof -top -sample_index=inuse_space /tmp/runheap heap.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "runheap:", err)
	os.Exit(1)
}

// watcher records the highest live heap and writes a profile at each new high.
type watcher struct {
	out     string
	mu      sync.Mutex
	live    uint64 // peak /gc/heap/live:bytes
	inUse   uint64 // peak HeapInuse
	written int
}

func (w *watcher) sample() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	live, objects := s[0].Value.Uint64(), s[1].Value.Uint64()
	w.mu.Lock()
	defer w.mu.Unlock()
	if objects > w.inUse {
		w.inUse = objects
	}
	if live > w.live {
		w.live = live
		w.write(w.out)
	}
}

func (w *watcher) write(path string) {
	f, err := os.Create(path)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fail(err)
	}
	w.written++
}

func vmHWM() string {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "?"
}

func main() {
	pipe := flag.String("pipe", "scripts/openldap-to-scim.pipe", "the pipe script")
	stateDir := flag.String("state-dir", "", "the pipe's state directory")
	workers := flag.Int("workers", 4, "as run --workers")
	out := flag.String("out", "heap.pprof", "the heap profile at the peak live heap (and OUT.end at the end)")
	rate := flag.Int("memprofilerate", 64<<10, "runtime.MemProfileRate: one sample per this many bytes allocated")
	flag.Parse()
	runtime.MemProfileRate = *rate
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	w := &watcher{out: *out}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()

	p, err := lang.LoadFile(*pipe, lang.LoadOptions{})
	if err != nil {
		fail(err)
	}
	st, err := state.Open(*stateDir, p.Name)
	if err != nil {
		fail(err)
	}
	defer st.Close()
	start, err := st.Checkpoint()
	if err != nil {
		fail(err)
	}
	client, err := scim.NewClient(p.SCIM, scim.WithLogger(log))
	if err != nil {
		fail(err)
	}
	src, err := source.Open(ctx, p.Source, start, source.Options{Logger: log, Once: true, KnownDN: st.KnownDN})
	if err != nil {
		fail(err)
	}
	defer src.Close()
	rd, err := source.OpenReader(ctx, p.Source, source.Options{Logger: log})
	if err != nil {
		fail(err)
	}
	defer rd.Close()
	r := &engine.Runner{Pipe: p, Dest: &engine.Destination{Client: client, Pipe: p}, Store: st, Source: src,
		Workers: *workers, Log: log, EntryByID: rd.EntryByID,
		Entry: func(ctx context.Context, dn string) (*lang.Entry, error) {
			if !rd.InScope(dn) {
				return nil, nil
			}
			return rd.Entry(ctx, dn)
		}}
	began := time.Now()
	err = r.Run(ctx)
	close(done)
	w.sample()
	w.write(*out + ".end")
	if err != nil {
		fail(err)
	}
	fmt.Printf("runheap: applied %d, unchanged %d in %.2f s; peak live heap %.1f MiB, peak heap objects %.1f MiB, VmHWM %s; %d profiles written, the last at the peak: %s\n",
		r.Stats.Applied.Load(), r.Stats.Unchanged.Load(), time.Since(began).Seconds(),
		float64(w.live)/(1<<20), float64(w.inUse)/(1<<20), vmHWM(), w.written-1, *out)
}
