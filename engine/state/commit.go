package state

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Group commit. Every bbolt commit costs two fsyncs (the pages, then the
// meta page), about a millisecond or more each, and bbolt lets one writer
// in at a time: with one transaction per write, run's workers queued behind
// each other's fsyncs (issue 15: a fifth to a third of a run's CPU). The
// store's small writes (Put, Delete, SetCheckpoint, Park, Unpark) go
// instead to one committer goroutine, which takes all the writes waiting
// at that moment and commits them in one transaction: one pair of fsyncs
// for many writes. It never waits for more to come, so a lone writer pays
// one hand-over to the committer and nothing else, and under load the
// groups grow by themselves while a commit is under way.
//
// The guarantees are those of a transaction per write: a write returns
// once the transaction that holds it is committed and synced, never
// before, so a caller that waits for Put (the create marker before its
// POST, the id map before the checkpoint passes the change) has it on
// disk. A write that fails (its own error) takes no part: the group is
// rolled back, the failing write gets its error, and the others are run
// again in a new transaction; so a write's function must give the same
// result when it runs twice, which those of this package do.

// Asynchronous writes (the shadow records, writeAsync) wait for no one:
// nothing relies on them being durable (engine/state/shadow.go: a record
// lost in a crash is dropped with the others at the next Open, and the
// engine answers from memory what it queued). Committed one group each as
// they came, they cost a commit and its fsyncs per change of a steady run:
// about 15% of `run --shadows`'s CPU in testdata/bench/runcpu.sh (issue
// 15). So a group made only of them lingers up to asyncLinger for more
// writes to join it: the next waited-for write (the checkpoint, saved every
// 100 ms while changes are applied, or an id-map write) takes them along
// at once, and so does closing the store; asyncMaxGroup of them go without
// waiting. Their order with the other writes does not change.
const (
	asyncLinger   = 100 * time.Millisecond
	asyncMaxGroup = 1024
)

// request is one write waiting for the committer. A writer that waits
// reads done; an asynchronous one (writeAsync) is told through after,
// called on the committer's goroutine once the write is durable or failed.
type request struct {
	fn    func(*Tx) error
	done  chan error
	after func(error)
}

// answer tells the writer how its write went.
func (r *request) answer(err error) {
	if r.after != nil {
		r.after(err)
		return
	}
	r.done <- err
}

// committer owns the store's grouped writes.
type committer struct {
	mu      sync.Mutex
	queue   []*request
	waiters int           // requests in queue that a writer waits for
	since   time.Time     // when the oldest request in queue was queued
	linger  time.Duration // asyncLinger (tests make it longer)
	closed  bool
	wake    chan struct{} // one pending wake-up at most
	stopped chan struct{} // closed when the loop has ended
	commits atomic.Int64  // transactions committed, for the benchmark's writes/commit
}

// fnPanic is a panic of a write's function, raised again in the writer's
// own goroutine rather than in the committer's.
type fnPanic struct{ v any }

func (p fnPanic) Error() string { return fmt.Sprintf("panic: %v", p.v) }

func (s *Store) startCommitter() {
	s.c = &committer{wake: make(chan struct{}, 1), stopped: make(chan struct{}), linger: asyncLinger}
	go s.commitLoop()
}

// write runs fn in a transaction of the committer's and returns when that
// transaction is durable (or has failed).
func (s *Store) write(fn func(*Tx) error) error {
	r := &request{fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(r); err != nil {
		return err
	}
	err := <-r.done
	if p, ok := err.(fnPanic); ok {
		panic(p.v)
	}
	return err
}

// writeAsync queues fn for the committer and returns at once; after is
// called (on the committer's goroutine, so it must not block or write to
// the store) once fn's transaction is durable, or with the error that kept
// it from being so — never before writeAsync has returned, so that a
// caller may hold a lock that after takes. Writes, waited for or not, are
// committed in the order they were queued.
func (s *Store) writeAsync(fn func(*Tx) error, after func(error)) {
	r := &request{fn: fn, after: after}
	if err := s.enqueue(r); err != nil {
		go after(err)
	}
}

// enqueue hands r to the committer.
func (s *Store) enqueue(r *request) error {
	c := s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("state %s: %w", s.path, bolterrors.ErrDatabaseNotOpen)
	}
	first := len(c.queue) == 0
	if first {
		c.since = time.Now()
	}
	c.queue = append(c.queue, r)
	if r.after == nil {
		c.waiters++
	}
	// An asynchronous write joining others waits with them: the committer
	// was woken for the first and lingers (or is about to), so waking it
	// again would only have it find the same; a write waited for, or a
	// full group, goes now.
	wake := first || r.after == nil || len(c.queue) >= asyncMaxGroup
	c.mu.Unlock()
	if !wake {
		return nil
	}
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already: it will take this request too
	}
	return nil
}

// stopCommitter ends the loop once the writes already queued are committed.
func (s *Store) stopCommitter() {
	c := s.c
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.stopped
}

func (s *Store) commitLoop() {
	c := s.c
	defer close(c.stopped)
	linger := time.NewTimer(time.Hour) // one timer for the loop's life, armed while a group of asynchronous writes lingers
	linger.Stop()
	defer linger.Stop()
	armed := false
	for {
		select {
		case <-c.wake:
		case <-linger.C:
			armed = false
		}
		// Let the writers just answered (or just woken) queue their next
		// write first: a yield of microseconds, which grows the groups.
		runtime.Gosched()
		c.mu.Lock()
		group, closed := c.queue, c.closed
		if !closed && len(group) > 0 && c.waiters == 0 && len(group) < asyncMaxGroup {
			if wait := c.linger - time.Since(c.since); wait > 0 {
				c.mu.Unlock()
				if !armed {
					linger.Reset(wait)
					armed = true
				}
				continue
			}
		}
		c.queue, c.waiters = nil, 0
		c.mu.Unlock()
		if len(group) > 0 {
			s.commitGroup(group)
		}
		if closed {
			return
		}
	}
}

// commitGroup commits group in one transaction and answers each request.
func (s *Store) commitGroup(group []*request) {
	for len(group) > 0 {
		failed, ferr := -1, error(nil)
		err := guard(s.path, func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				t := &Tx{tx}
				for i, r := range group {
					if err := runFn(r.fn, t); err != nil {
						failed, ferr = i, err
						return err
					}
				}
				return nil
			})
		})
		if failed < 0 {
			// committed, or the commit itself failed: the same for all
			s.c.commits.Add(1)
			for _, r := range group {
				r.answer(err)
			}
			return
		}
		group[failed].answer(ferr)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// runFn runs one write's function as callerFn does, except that a panic of
// the function's own becomes an fnPanic error (raised again by write) so
// that the committer goes on with the others.
func runFn(fn func(*Tx) error, t *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(storePanic); ok {
				panic(r)
			}
			err = fnPanic{r}
		}
	}()
	return fn(t)
}
