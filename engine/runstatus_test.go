package engine

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/source"
)

// linkSource is a source whose connection state the test sets.
type linkSource struct{ st source.LinkState }

func (*linkSource) Next(context.Context) (*source.Event, error) { return nil, io.EOF }
func (*linkSource) Close() error                                { return nil }
func (s *linkSource) Link() source.LinkState                    { return s.st }

// TestHealthSourceLink: a source that lost its connection is an outage of
// "the source" (with its time and reason) unless the workers already see
// one, which is reported first; a source without a link adds nothing.
func TestHealthSourceLink(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	down := source.LinkState{Down: true, Since: since, Err: "connection refused"}
	tests := []struct {
		name       string
		src        source.Source
		workerDown bool
		want       string
	}{
		{"link up", &linkSource{}, false, ""},
		{"link down", &linkSource{st: down}, false, SourceOutage},
		{"workers' outage first", &linkSource{st: down}, true, "the SCIM service"},
		{"no link", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{Source: tt.src}
			if tt.workerDown {
				r.health.since, r.health.what = time.Now(), "the SCIM service"
			}
			h := r.Health()
			if h.Outage != tt.want {
				t.Fatalf("Outage = %q, want %q", h.Outage, tt.want)
			}
			if tt.want == SourceOutage && (!h.OutageSince.Equal(since) || h.OutageErr != "connection refused") {
				t.Errorf("the source's outage: %+v", h)
			}
		})
	}
}
