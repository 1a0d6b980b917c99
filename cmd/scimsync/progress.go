package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/logsafe"
)

// progress shows how a long command is going: a bar redrawn in place on a
// terminal, a log line every interval otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	drawn    bool
}

func newProgress(w io.Writer, interval time.Duration) *progress {
	p := &progress{w: w, interval: interval}
	if f, ok := logsafe.File(w); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
			p.w = f // the bar's own escape sequences (\r\033[K) go to the terminal as they are
		}
	}
	return p
}

// run draws until done is closed. mu is held while drawing, so other
// output does not interleave with the bar.
func (p *progress) run(done <-chan struct{}, st *engine.Stats, mu *sync.Mutex) {
	every := p.interval
	if p.tty {
		every = 200 * time.Millisecond
	}
	if every <= 0 {
		<-done
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			mu.Lock()
			p.clear()
			mu.Unlock()
			return
		case <-t.C:
			mu.Lock()
			p.draw(st)
			mu.Unlock()
		}
	}
}

// line describes the progress: done/total, rate, ETA.
func line(st *engine.Stats) string {
	done := st.Done.Load()
	el := time.Since(st.Start)
	rate := float64(done) / el.Seconds()
	s := fmt.Sprintf("%d", done)
	if st.Total > 0 {
		s += fmt.Sprintf("/%d entries (%d%%)", st.Total, done*100/st.Total)
	} else {
		s += " entries"
	}
	s += fmt.Sprintf(", %.0f/s, %d failed", rate, st.Failed.Load())
	if st.Total > 0 && rate > 0 && done < st.Total {
		eta := time.Duration(float64(st.Total-done)/rate) * time.Second
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}

func (p *progress) draw(st *engine.Stats) {
	if !p.tty {
		fmt.Fprintf(p.w, "resync progress: %s\n", line(st))
		return
	}
	bar := ""
	if st.Total > 0 {
		const width = 30
		n := int(st.Done.Load() * width / st.Total)
		bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] "
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s", bar, line(st))
	p.drawn = true
}

// clear removes the bar before other output.
func (p *progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
