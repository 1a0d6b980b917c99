package scim

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeSleep records the waits instead of sleeping; cancel, when set, is called at the
// wait with that index (0-based) to simulate a cancellation during it.
type fakeSleep struct {
	waits  []time.Duration
	cancel func()
	at     int
}

func (f *fakeSleep) Sleep(ctx context.Context, d time.Duration) error {
	if f.cancel != nil && len(f.waits) == f.at {
		f.cancel()
	}
	f.waits = append(f.waits, d)
	return ctx.Err()
}

func TestCeiling(t *testing.T) {
	r := Retry{}
	want := []time.Duration{
		200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
		3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond, 25600 * time.Millisecond,
		30 * time.Second, 30 * time.Second,
	}
	for i, w := range want {
		if got := r.Ceiling(i + 1); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := r.Ceiling(1000); got != 30*time.Second {
		t.Errorf("Ceiling(1000) = %v, want the cap", got)
	}
	custom := Retry{Base: time.Second, Cap: 5 * time.Second}
	for n, w := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second} {
		if got := custom.Ceiling(n); got != w {
			t.Errorf("custom Ceiling(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestWait(t *testing.T) {
	tests := []struct {
		name string
		rand float64
		n    int
		err  error
		want time.Duration
	}{
		{"full jitter low end", 0, 3, &Error{Status: 503}, 0},
		{"full jitter middle", 0.5, 3, &Error{Status: 503}, 400 * time.Millisecond},
		{"full jitter near ceiling", 0.999, 1, &TransportError{Timeout: true}, 199800 * time.Microsecond},
		{"retry-after wins", 0, 1, &Error{Status: 429, RetryAfter: 3 * time.Second}, 3 * time.Second},
		{"retry-after plus jitter of up to base", 0.5, 9, &Error{Status: 429, RetryAfter: 3 * time.Second}, 3*time.Second + 100*time.Millisecond},
		{"retry-after beyond the cap", 0, 1, &Error{Status: 503, RetryAfter: time.Minute}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Retry{Rand: func() float64 { return tt.rand }}
			if got := r.Wait(tt.n, tt.err); got != tt.want {
				t.Errorf("Wait(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestRetryDo(t *testing.T) {
	e503 := &Error{Status: 503, Method: "GET", Path: "/Users"}
	e429 := &Error{Status: 429, RetryAfter: 2 * time.Second, Method: "GET", Path: "/Users"}
	e400 := &Error{Status: 400, ScimType: "invalidValue", Method: "GET", Path: "/Users"}
	tests := []struct {
		name      string
		errs      []error // per attempt; nil = success
		max       int
		wantCalls int
		wantWaits []time.Duration
		wantErr   string
	}{
		{"success at once", []error{nil}, 5, 1, nil, ""},
		{"500 then success", []error{e503, nil}, 5, 2, []time.Duration{100 * time.Millisecond}, ""},
		{"429 with Retry-After then success", []error{e429, nil}, 5, 2, []time.Duration{2*time.Second + 100*time.Millisecond}, ""},
		{"not retryable returns at once", []error{e400, nil}, 5, 1, nil,
			"scim: GET /Users: 400 Bad Request (invalidValue)"},
		{"not retryable after a retry", []error{e503, e400}, 5, 2, []time.Duration{100 * time.Millisecond},
			"scim: gave up after 2 attempts: GET /Users: 400 Bad Request (invalidValue)"},
		{"bounded", []error{e503, e503, e503, e503, e503, nil}, 5, 5,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
			"scim: gave up after 5 attempts: GET /Users: 503 Service Unavailable"},
		{"one attempt only", []error{e503, nil}, 1, 1, nil,
			"scim: gave up after 1 attempt: GET /Users: 503 Service Unavailable"},
		{"transport errors too", []error{&TransportError{Method: "GET", Path: "/Users", Timeout: true, msg: "timeout: no complete response within 10s"}, nil}, 5, 2,
			[]time.Duration{100 * time.Millisecond}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeSleep{}
			r := Retry{MaxAttempts: tt.max, Sleep: fs.Sleep, Rand: func() float64 { return 0.5 }}
			calls := 0
			err := r.Do(context.Background(), func(context.Context) error {
				calls++
				return tt.errs[calls-1]
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if !equalDurations(fs.waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", fs.waits, tt.wantWaits)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("err = %v\nwant %s", err, tt.wantErr)
			}
			if len(tt.errs) > 0 && tt.wantErr != "" && calls > 1 {
				var re *RetryError
				if !errors.As(err, &re) || re.Attempts != calls {
					t.Errorf("err is not a *RetryError with Attempts %d: %#v", calls, err)
				}
				var se *Error
				if !errors.As(err, &se) {
					t.Errorf("the *RetryError does not wrap the last *Error")
				}
			}
		})
	}
}

func TestRetryDoCancelStopsWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeSleep{cancel: cancel, at: 1} // cancelled during the second wait
	r := Retry{Sleep: fs.Sleep}
	calls := 0
	err := r.Do(ctx, func(context.Context) error { calls++; return &Error{Status: 503, Method: "GET", Path: "/x"} })
	if calls != 2 {
		t.Errorf("calls = %d, want 2", calls)
	}
	if !errors.Is(err, context.Canceled) || !IsStatus(err, 503) {
		t.Errorf("err = %v: want both context.Canceled and the 503", err)
	}
	want := "scim: stopped after 2 attempts (context canceled); last error: GET /x: 503 Service Unavailable"
	if err.Error() != want {
		t.Errorf("err = %s\nwant %s", err, want)
	}
}

func TestRetryDoDeadlineTooClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := &fakeSleep{}
	r := Retry{Sleep: fs.Sleep}
	err := r.Do(ctx, func(context.Context) error {
		return &Error{Status: 503, RetryAfter: 2 * time.Minute, Method: "GET", Path: "/x"}
	})
	if len(fs.waits) != 0 {
		t.Errorf("waited %v although the deadline comes first", fs.waits)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestRetryDoRetryAfterTooLong(t *testing.T) {
	fs := &fakeSleep{}
	r := Retry{Sleep: fs.Sleep, MaxRetryAfter: time.Minute}
	err := r.Do(context.Background(), func(context.Context) error {
		return &Error{Status: 429, RetryAfter: time.Hour, Method: "GET", Path: "/x"}
	})
	want := "scim: gave up after 1 attempt: Retry-After 1h0m0s is longer than the 1m0s allowed; " +
		"last error: GET /x: 429 Too Many Requests (retry after 1h0m0s)"
	if err == nil || err.Error() != want || len(fs.waits) != 0 {
		t.Errorf("err = %v (waits %v)\nwant %s", err, fs.waits, want)
	}
}

func TestSleepContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepContext = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Error("sleepContext did not stop at cancellation")
	}
	if err := sleepContext(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepContext = %v", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
