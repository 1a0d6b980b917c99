package scim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// arrivals is a server that records when each request arrived and answers
// the first `first` of them with status (Retry-After as given), the rest 200.
type arrivals struct {
	mu       sync.Mutex
	times    []time.Time
	refusals []time.Time // when each refusal was answered
	status   int
	retry    string
	first    int
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	n := len(a.times)
	a.mu.Unlock()
	if n <= a.first {
		if a.retry != "" {
			w.Header().Set("Retry-After", a.retry)
		}
		w.WriteHeader(a.status)
		a.mu.Lock()
		a.refusals = append(a.refusals, time.Now())
		a.mu.Unlock()
		return
	}
	w.Header().Set("Content-Type", MediaType)
	fmt.Fprint(w, `{"id":"1"}`)
}

// hammer sends n GETs from each of g goroutines.
func hammer(t *testing.T, c *Client, g, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := c.Get(context.Background(), "/Users/1"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestThrottle429PausesEveryGoroutine: one 429 with Retry-After: 1 holds
// back every goroutine that shares the client, not only the one that got
// it: no request arrives within the second after it (requests already on
// their way when it was answered aside).
func TestThrottle429PausesEveryGoroutine(t *testing.T) {
	for _, tc := range []struct{ name, retryAfter string }{{"Retry-After", "1"}, {"none", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			a := &arrivals{status: http.StatusTooManyRequests, retry: tc.retryAfter, first: 1}
			srv := httptest.NewServer(a)
			defer srv.Close()
			c, err := NewClient(Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			hammer(t, c, 4, 5)
			a.mu.Lock()
			defer a.mu.Unlock()
			// Requests sent before the client had read the 429 arrive just
			// after it; none may start in the rest of the pause.
			refused := a.refusals[0]
			early := 0
			for _, at := range a.times[1:] {
				if at.After(refused.Add(50*time.Millisecond)) && at.Before(refused.Add(950*time.Millisecond)) {
					early++
				}
			}
			if early > 0 {
				t.Errorf("%d requests arrived within the second after the 429: %v", early, offsets(a.times, refused))
			}
			if len(a.times) != 21 {
				t.Errorf("%d requests, want 21 (20 and the refused one again)", len(a.times))
			}
		})
	}
}

// TestThrottleRateCap: with Config.Rate, the requests of every goroutine
// together never exceed the rate in any second.
func TestThrottleRateCap(t *testing.T) {
	a := &arrivals{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	const rate = 20
	c, err := NewClient(Config{URL: srv.URL, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	hammer(t, c, 4, 15)
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := maxInWindow(a.times, time.Second); w > rate {
		t.Errorf("%d requests arrived within one second, cap %d", w, rate)
	}
}

// maxInWindow is the most times within any half-open window of length d.
func maxInWindow(times []time.Time, d time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestThrottleAIMD: a 429 halves the pace from what was sent; it recovers
// by a tenth a second, to the cap, or back to no limit without one.
func TestThrottleAIMD(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	for _, tc := range []struct {
		name      string
		cap       float64
		sent      int     // requests in the second before the 429
		halved    float64 // the rate right after it
		recovered float64 // after a minute
	}{
		{"no cap", 0, 40, 20, 0},
		{"cap", 10, 0, 5, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newThrottle(tc.cap, clock)
			for range tc.sent {
				if err := th.wait(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			th.observe(&Error{Status: http.StatusTooManyRequests})
			if got := th.current(); got != tc.halved {
				t.Errorf("after a 429: rate %g, want %g", got, tc.halved)
			}
			th.observe(&Error{Status: http.StatusTooManyRequests}) // same overload, in flight
			if got := th.current(); got != tc.halved {
				t.Errorf("a second 429 within the pause halved again: %g", got)
			}
			now = now.Add(time.Minute)
			if got := th.current(); got != tc.recovered {
				t.Errorf("a minute later: rate %g, want %g", got, tc.recovered)
			}
			th.observe(&Error{Status: http.StatusBadRequest})
			if got := th.current(); got != tc.recovered {
				t.Errorf("a 400 changed the pace: %g", got)
			}
		})
	}
}

func offsets(times []time.Time, from time.Time) []string {
	var out []string
	for _, t := range times {
		out = append(out, t.Sub(from).Round(time.Millisecond).String())
	}
	return out
}

// current returns the allowed rate now (0: unlimited).
func (t *throttle) current() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recover(t.now())
	return t.rate
}
