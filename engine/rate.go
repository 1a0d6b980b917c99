package engine

import (
	"context"
	"sync"
	"time"
)

// RateLimiter spaces requests to at most Rate() per second. Rate is asked
// on every request, so it can change while running (resync --rate-file);
// zero or less means no limit.
type RateLimiter struct {
	Rate func() float64

	mu   sync.Mutex
	next time.Time
}

// Wait blocks until the next request may go, or ctx is done.
func (l *RateLimiter) Wait(ctx context.Context) error {
	r := l.Rate()
	if r <= 0 {
		return ctx.Err()
	}
	interval := time.Duration(float64(time.Second) / r)
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	wait := l.next.Sub(now)
	l.next = l.next.Add(interval)
	l.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
