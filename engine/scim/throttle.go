package scim

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"
)

// throttle paces every request a Client sends, whichever goroutine sends
// it: one per service provider, so that a 429 slows the whole pipe down
// together rather than one worker at a time (eight workers each backing off
// on their own keep the service saturated: as one waits, the others send).
//
// It is additive-increase, multiplicative-decrease (as TCP's congestion
// control): a 429, or a 503 that carries Retry-After, halves the allowed
// rate (starting from what was actually sent in the last second) and pauses
// every request for the Retry-After, or a second without one; each second
// without such an answer raises the rate by a tenth, until it passes the
// configured cap, or, with none, a rate high enough to mean "unlimited" again.
// A configured cap (Config.Rate) is never exceeded.
type throttle struct {
	max float64 // the configured cap in requests per second; 0: none

	mu       sync.Mutex
	rate     float64   // the allowed rate now; 0: unlimited
	next     time.Time // the earliest start of the next request
	pause    time.Time // no request starts before this (Retry-After)
	lastDown time.Time // the last decrease, for pacing the increases
	lastUp   time.Time
	started  []time.Time // request starts within the last window
	now      func() time.Time
}

// unthrottledAbove is the rate above which an adaptive throttle lets go.
const unthrottledAbove = 1000

func newThrottle(max float64, now func() time.Time) *throttle {
	return &throttle{max: max, rate: max, now: now}
}

// wait blocks until a request may start, or ctx is done. With a rate in
// force, requests are spaced 1/rate apart, and, since a goroutine may wake
// late and bunch with the next, no more than rate of them start within any
// window of a little over a second (counted when they really start).
func (t *throttle) wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		now := t.now()
		t.recover(now)
		start := now
		if t.pause.After(start) {
			start = t.pause
		}
		if t.rate > 0 {
			if t.next.After(start) {
				start = t.next
			}
			if n := int(math.Ceil(t.rate)); len(t.started) >= n {
				if w := t.started[len(t.started)-n].Add(window); w.After(start) {
					start = w
				}
			}
		}
		if !start.After(now) {
			if t.rate > 0 {
				t.next = now.Add(time.Duration(float64(time.Second) / t.rate))
			}
			t.remember(now)
			t.mu.Unlock()
			return ctx.Err()
		}
		t.mu.Unlock()
		tm := time.NewTimer(start.Sub(now))
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
}

// window is the span in which at most rate requests start: a little over
// a second, as requests reach the service with some jitter and the service
// counts arrivals.
const window = time.Second + 20*time.Millisecond

// remember keeps the starts of the last window: how many to halve from
// after a 429, and what the rate cap counts.
func (t *throttle) remember(now time.Time) {
	cut := 0
	for cut < len(t.started) && now.Sub(t.started[cut]) >= window {
		cut++
	}
	t.started = append(t.started[cut:], now)
}

// observe adjusts the pace after an answer (or a failure to get one).
func (t *throttle) observe(err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	if e.Status != http.StatusTooManyRequests && !(e.Status == http.StatusServiceUnavailable && e.RetryAfter > 0) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	pause := e.RetryAfter
	if pause <= 0 {
		pause = time.Second
	}
	if p := now.Add(pause); p.After(t.pause) {
		t.pause = p
	}
	// One decrease per pause: the answers to requests already in flight
	// report the same overload.
	if now.Sub(t.lastDown) < pause {
		return
	}
	cur := t.rate
	if cur <= 0 {
		cur = float64(len(t.started))
	}
	t.rate = max(cur/2, 0.5)
	t.lastDown, t.lastUp = now, now
}

// recover raises the rate by a tenth for each second since the last change.
func (t *throttle) recover(now time.Time) {
	if t.rate <= 0 || t.lastDown.IsZero() {
		return
	}
	for now.Sub(t.lastUp) >= time.Second {
		t.lastUp = t.lastUp.Add(time.Second)
		t.rate *= 1.1
		if t.max > 0 && t.rate >= t.max {
			t.rate, t.lastDown = t.max, time.Time{}
			return
		}
		if t.max == 0 && t.rate > unthrottledAbove {
			t.rate, t.lastDown = 0, time.Time{}
			return
		}
	}
}
