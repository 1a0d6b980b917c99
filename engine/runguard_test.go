package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeleteWindow: run's mass-delete guard counts the deletes within a
// sliding window (older ones fall out), stops at the first one over the
// limit and every one after it, records the stop in its marker so that a
// restarted run stops at its first delete, and --allow-deletes (Allow)
// clears the marker.
func TestDeleteWindow(t *testing.T) {
	tests := []struct {
		name    string
		guard   DeleteGuard
		mapped  int
		at      []time.Duration // when each delete is asked for, from the start
		allowed int             // how many pass before the stop (len(at): no stop)
	}{
		{"under the count", DeleteGuard{Max: 3, Percent: -1}, 100, []time.Duration{0, 1, 2}, 3},
		{"over the count", DeleteGuard{Max: 3, Percent: -1}, 100, []time.Duration{0, 1, 2, 3, 4}, 3},
		{"spread beyond the window", DeleteGuard{Max: 2, Percent: -1}, 100,
			[]time.Duration{0, 1, 11 * time.Minute, 11*time.Minute + 1, 22 * time.Minute}, 5},
		{"a share of the id map", DeleteGuard{Max: 1000, Percent: 20, MinForPercent: 3}, 10, []time.Duration{0, 1, 2, 3}, 2},
		{"allowed", DeleteGuard{Max: 1, Allow: true}, 10, []time.Duration{0, 1, 2, 3}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			w := &DeleteWindow{Guard: tt.guard, Window: 10 * time.Minute, Now: func() time.Time { return now }}
			allowed := 0
			var stop error
			for _, d := range tt.at {
				now = start.Add(d)
				if err := w.Admit(tt.mapped); err != nil {
					if stop == nil {
						stop = err
					}
					continue
				}
				if stop != nil {
					t.Fatalf("a delete passed after the stop")
				}
				allowed++
			}
			if allowed != tt.allowed {
				t.Errorf("%d deletes passed, want %d (stop: %v)", allowed, tt.allowed, stop)
			}
			if allowed < len(tt.at) {
				var tm *TooManyDeletesError
				if !errors.As(stop, &tm) || !errors.Is(stop, ErrTooManyDeletes) || tm.Window != 10*time.Minute ||
					!strings.Contains(stop.Error(), "--allow-deletes") || !strings.Contains(stop.Error(), "checkpoint stays") {
					t.Errorf("stop %v", stop)
				}
			}
		})
	}
}

// TestDeleteWindowMarker: a stop is written to the marker; the next run's
// window refuses its first delete; Allow removes the marker.
func TestDeleteWindowMarker(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "p.state.deletes-held")
	w := &DeleteWindow{Guard: DeleteGuard{Max: 1, Percent: -1}, Marker: marker}
	if err := w.Admit(10); err != nil {
		t.Fatal(err)
	}
	if err := w.Admit(10); err == nil {
		t.Fatal("second delete passed over a limit of 1")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no marker: %v", err)
	}
	next := &DeleteWindow{Guard: DeleteGuard{Max: 1, Percent: -1}, Marker: marker}
	err := next.Admit(10)
	var held *HeldDeletesError
	if !errors.As(err, &held) || !errors.Is(err, ErrTooManyDeletes) || !strings.Contains(err.Error(), "stopped at delete 2") {
		t.Fatalf("restarted run's first delete: %v", err)
	}
	allowed := &DeleteWindow{Guard: DeleteGuard{Max: 1, Percent: -1, Allow: true}, Marker: marker}
	if err := allowed.Admit(10); err != nil {
		t.Fatalf("with Allow: %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("marker left after Allow: %v", err)
	}
}

// TestChangeSummary: the sync log shows the attribute names a PATCH or a
// create touches and the number of operations, never a value.
func TestChangeSummary(t *testing.T) {
	bodies := [][]byte{
		[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` +
			`{"op":"replace","path":"displayName","value":"Secret Name"},` +
			`{"op":"remove","path":"emails[type eq \"work\"]"},` +
			`{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"m1"}]}`),
		[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","value":{"title":"T","active":true}}]}`),
	}
	attrs, n := patchSummary(bodies)
	want := "active displayName emails title urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
	if got := strings.Join(attrs, " "); got != want || n != 4 {
		t.Errorf("patchSummary = %q, %d; want %q, 4", got, n, want)
	}
	created := bodyAttributes([]byte(`{"schemas":["x"],"userName":"u","name":{"givenName":"G"},"password":"p4ss"}`))
	if got := strings.Join(created, " "); got != "name password userName" {
		t.Errorf("bodyAttributes = %q", got)
	}
}
