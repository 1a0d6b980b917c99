package engine

import (
	"context"

	"github.com/scimsync/scimsync/lang"
)

// Lookup finds the resource res is about, as Apply would before deciding
// between a create and an update: by the class's lookup filter (and,
// where the destination keeps one, a listing of the endpoint). A nil
// current means there is none. A Bulk resync looks up first, then queues
// the creates and applies the rest with ApplyFound, so that no resource is
// looked up twice.
func (d *Destination) Lookup(ctx context.Context, res *lang.Result) (id string, current []byte, err error) {
	return d.find(ctx, res.Endpoint, res.Filter, "")
}

// ApplyFound applies res to the resource Lookup found (id, current):
// an update of what differs over the managed paths, as Apply does for an
// existing resource, or Skipped under SkipUpdates.
func (d *Destination) ApplyFound(ctx context.Context, res *lang.Result, id string, current []byte, refs lang.Resolver) (Applied, error) {
	if d.DryRun != nil {
		if vals := res.Secrets(); len(vals) > 0 {
			ctx = context.WithValue(ctx, shownSecrets{}, vals)
		}
	}
	out := Applied{Endpoint: res.Endpoint, ID: id}
	if d.SkipUpdates {
		out.Outcome = Skipped
		return out, nil
	}
	return d.update(ctx, res, out, current, refs)
}
