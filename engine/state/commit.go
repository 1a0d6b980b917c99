package state

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

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
	s.c = &committer{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
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
	c.queue = append(c.queue, r)
	c.mu.Unlock()
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
	for range c.wake {
		// Let the writers just answered (or just woken) queue their next
		// write first: a yield of microseconds, which grows the groups.
		runtime.Gosched()
		c.mu.Lock()
		group, closed := c.queue, c.closed
		c.queue = nil
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
