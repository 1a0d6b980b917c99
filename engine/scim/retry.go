package scim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults of Retry.
const (
	DefaultBackoffBase   = 200 * time.Millisecond
	DefaultBackoffCap    = 30 * time.Second
	DefaultMaxRetryAfter = 5 * time.Minute
)

// Retry is the retry policy of a Client: exponential backoff with full jitter
// (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015), Retry-After honoured,
// attempts bounded. Zero fields mean the defaults. Sleep, Now and Rand are there for tests.
type Retry struct {
	MaxAttempts   int           // attempts in all, the first included (default Config.MaxAttempts, else 5)
	Base          time.Duration // backoff ceiling before the first retry (default 200ms), doubled each retry
	Cap           time.Duration // largest backoff ceiling (default 30s)
	MaxRetryAfter time.Duration // a longer Retry-After is not waited for: the error is returned (default 5m)

	Sleep func(ctx context.Context, d time.Duration) error // waits d or until ctx is done (ctx.Err())
	Now   func() time.Time                                 // clock for HTTP-date Retry-After values
	Rand  func() float64                                   // uniform in [0, 1), for the jitter

	// OnRetry, if set, is called before each wait with the attempt that failed (1-based),
	// its error and the wait. The Client uses it to log.
	OnRetry func(attempt int, err error, wait time.Duration)
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.Base <= 0 {
		r.Base = DefaultBackoffBase
	}
	if r.Cap <= 0 {
		r.Cap = DefaultBackoffCap
	}
	if r.Cap < r.Base {
		r.Cap = r.Base
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if r.Sleep == nil {
		r.Sleep = sleepContext
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	return r
}

// Ceiling returns the backoff ceiling before retry number n (1 for the first retry):
// min(Cap, Base·2^(n-1)).
func (r Retry) Ceiling(n int) time.Duration {
	r = r.withDefaults()
	d := r.Base
	for i := 1; i < n && d < r.Cap; i++ {
		d *= 2
	}
	return min(d, r.Cap)
}

// Wait returns how long to wait before retry number n after err: the Retry-After of an
// *Error when it has one, plus a jitter of up to Base so that many clients told the same
// Retry-After do not come back at the same instant; otherwise a uniformly random duration
// in [0, Ceiling(n)) ("full jitter").
func (r Retry) Wait(n int, err error) time.Duration {
	r = r.withDefaults()
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter + time.Duration(r.Rand()*float64(r.Base))
	}
	return time.Duration(r.Rand() * float64(r.Ceiling(n)))
}

// Do calls op until it succeeds, fails with an error that is not temporary (IsTemporary), or
// MaxAttempts attempts were made, waiting between attempts as Wait says. A wait ends early
// when ctx is done. The error after more than one attempt, or after a temporary failure, is a
// *RetryError that wraps the last attempt's error.
func (r Retry) Do(ctx context.Context, op func(ctx context.Context) error) error {
	r = r.withDefaults()
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if !IsTemporary(err) {
			if attempt == 1 {
				return err
			}
			return &RetryError{Attempts: attempt, Err: err}
		}
		if attempt >= r.MaxAttempts {
			return &RetryError{Attempts: attempt, Err: err}
		}
		var e *Error
		if errors.As(err, &e) && e.RetryAfter > r.MaxRetryAfter {
			return &RetryError{Attempts: attempt, Err: err,
				Reason: fmt.Sprintf("Retry-After %s is longer than the %s allowed", e.RetryAfter, r.MaxRetryAfter)}
		}
		wait := r.Wait(attempt, err)
		if dl, ok := ctx.Deadline(); ok && r.Now().Add(wait).After(dl) {
			return &RetryError{Attempts: attempt, Err: err, Stop: context.DeadlineExceeded,
				Reason: fmt.Sprintf("the next attempt (in %s) would start after the deadline", wait.Round(time.Millisecond))}
		}
		if r.OnRetry != nil {
			r.OnRetry(attempt, err, wait)
		}
		if serr := r.Sleep(ctx, wait); serr != nil {
			return &RetryError{Attempts: attempt, Err: err, Stop: serr}
		}
	}
}

// RetryError is the failure of a request after retries, or of a temporary failure that was
// not retried. Err is the last attempt's error (an *Error, *TransportError, ...), so
// errors.As and IsStatus see through it.
type RetryError struct {
	Attempts int    // attempts made
	Err      error  // error of the last attempt
	Stop     error  // why waiting stopped early (the context's error), or nil
	Reason   string // why no further attempt was made, when not the attempt limit or Err itself
}

// Error renders "scim: gave up after 5 attempts: GET /Users: 503 Service Unavailable: ...".
func (e *RetryError) Error() string {
	var last string
	if m, ok := e.Err.(interface{ message() string }); ok {
		last = m.message() // without a second "scim: " prefix
	} else {
		last = e.Err.Error()
	}
	attempts := "1 attempt"
	if e.Attempts != 1 {
		attempts = fmt.Sprintf("%d attempts", e.Attempts)
	}
	switch {
	case e.Reason != "":
		return fmt.Sprintf("scim: gave up after %s: %s; last error: %s", attempts, e.Reason, last)
	case e.Stop != nil:
		return fmt.Sprintf("scim: stopped after %s (%v); last error: %s", attempts, e.Stop, last)
	default:
		return fmt.Sprintf("scim: gave up after %s: %s", attempts, last)
	}
}

// Unwrap returns the last attempt's error and, when waiting was cut short, the context's error.
func (e *RetryError) Unwrap() []error {
	if e.Stop != nil {
		return []error{e.Err, e.Stop}
	}
	return []error{e.Err}
}

// sleepContext waits d, or until ctx is done and then returns ctx.Err().
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
