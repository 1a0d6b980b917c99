package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestDeleteGuard(t *testing.T) {
	tests := []struct {
		name            string
		g               DeleteGuard
		deletes, mapped int
		stop            string // "" when allowed, else a substring of the error
	}{
		{"nothing to delete", DeleteGuard{}, 0, 0, ""},
		{"a few of a small tenant", DeleteGuard{}, 2, 5, ""},
		{"under the floor, all of them", DeleteGuard{}, 9, 9, ""},
		{"the floor at 100%", DeleteGuard{}, 10, 10, "at most 20% of the managed resources"},
		{"a fifth is allowed", DeleteGuard{}, 200, 1000, ""},
		{"over a fifth", DeleteGuard{}, 201, 1000, "201 deletes or deactivations (20% of the 1000"},
		{"over the count", DeleteGuard{}, 501, 100000, "at most 500"},
		{"a lower count", DeleteGuard{Max: 3}, 5, 6, "at most 3"},
		{"no count limit", DeleteGuard{Max: -1, Percent: -1}, 100000, 100000, ""},
		{"allowed", DeleteGuard{Max: 1, Allow: true}, 5, 6, ""},
		{"an empty id map", DeleteGuard{}, 12, 0, "100%"},
		{"a higher percentage", DeleteGuard{Percent: 60}, 50, 100, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.g.Check(tt.deletes, tt.mapped)
			switch {
			case tt.stop == "" && err != nil:
				t.Fatalf("stopped: %v", err)
			case tt.stop != "" && (err == nil || !strings.Contains(err.Error(), tt.stop)):
				t.Fatalf("got %v, want an error with %q", err, tt.stop)
			case err != nil && !errors.Is(err, ErrTooManyDeletes):
				t.Fatalf("%v is not ErrTooManyDeletes", err)
			}
		})
	}
}
