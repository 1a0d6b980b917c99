package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// The forms a PATCH can take to reach elements of a multi-valued attribute
// (the script's patchFilters setting).
const (
	// PatchFormFilter names elements with a value filter (remove
	// emails[type eq "other"]): it leaves the elements the pipe does not
	// manage alone on the service, whatever happened to them since they were
	// read. It is the default; a service that refuses it makes the
	// destination fall back to PatchFormReplace.
	PatchFormFilter = "filter"
	// PatchFormReplace replaces the whole attribute with the desired
	// elements plus the unmanaged ones the current resource has.
	PatchFormReplace = "replace"
)

// patchFormState is what a Destination learned about its service's PATCH
// forms. Destinations are shared by the run's workers, hence the atomics.
type patchFormState struct {
	replace atomic.Bool // the service refused a value filter: replace from now on
	logged  sync.Once
}

// patchForms holds each Destination's patchFormState, keyed weakly so that a
// Destination that is no longer used takes its entry with it. (A field of
// Destination would do; the state lives here to keep it beside the code
// that uses it.)
var patchForms sync.Map // weak.Pointer[Destination] -> *patchFormState

func (d *Destination) patchFormState() *patchFormState {
	key := weak.Make(d)
	if s, ok := patchForms.Load(key); ok {
		return s.(*patchFormState)
	}
	s, loaded := patchForms.LoadOrStore(key, &patchFormState{})
	if !loaded {
		runtime.AddCleanup(d, func(k weak.Pointer[Destination]) { patchForms.Delete(k) }, key)
	}
	return s.(*patchFormState)
}

// PatchForm returns the form the destination's PATCHes take: the script's
// patchFilters, or PatchFormReplace once the service has refused a value
// filter.
func (d *Destination) PatchForm() string {
	if d.Pipe != nil && d.Pipe.PatchFilters == PatchFormReplace || d.patchFormState().replace.Load() {
		return PatchFormReplace
	}
	return PatchFormFilter
}

// sendPatches sends the PATCH bodies that turn current into desired (as
// Destination.Patch made them, in the filter form) and returns how many
// requests it sent, refused ones included.
//
// In the replace form it sends the bodies of scim.ReplaceFiltered instead.
// In the filter form, a body the service refuses as a filtered path (see
// refusedFilter) is rebuilt in the replace form and sent again; when that
// succeeds the destination keeps the replace form for every later PATCH,
// and says so once in the log. RFC 7644 §3.5.2 makes a refused PATCH change
// nothing, so the rebuild starts from current, unless earlier bodies of the
// same change went through: then it reads the resource again.
func (d *Destination) sendPatches(ctx context.Context, ep *lang.Endpoint, id string, current, desired []byte, managed []scim.Path, bodies [][]byte) (int, error) {
	if d.PatchForm() == PatchFormReplace {
		rb, err := d.replaceBodies(current, desired, managed, ep)
		if err != nil {
			return 0, err
		}
		return d.sendBodies(ctx, ep, id, rb)
	}
	for i, body := range bodies {
		_, err := d.write(ctx, http.MethodPatch, ep.Path, id, body)
		if err == nil {
			continue
		}
		sent := i + 1
		if !refusedFilter(err, body) {
			return sent, fmt.Errorf("patch %s/%s: %w", ep.Path, id, err)
		}
		refusal := err
		if i > 0 {
			if err := d.wait(ctx); err != nil {
				return sent, err
			}
			if current, err = d.Client.Get(ctx, strings.TrimRight(ep.Path, "/")+"/"+url.PathEscape(id)); err != nil {
				return sent, fmt.Errorf("get %s/%s after a refused value filter: %w", ep.Path, id, err)
			}
		}
		rb, err := d.replaceBodies(current, desired, managed, ep)
		if err != nil {
			return sent, err
		}
		n, err := d.sendBodies(ctx, ep, id, rb)
		sent += n
		if err != nil {
			return sent, fmt.Errorf("%w (sent with whole multi-valued attributes after the service refused a value filter: %v)", err, refusal)
		}
		st := d.patchFormState()
		st.replace.Store(true)
		st.logged.Do(func() {
			var se *scim.Error
			errors.As(refusal, &se)
			d.log().Warn("scim: the service refuses PATCH paths with a value filter; from now on its multi-valued "+
				"attributes are replaced whole (set patchFilters = \"replace\" in the scim block to start so)",
				"endpoint", ep.Path, "status", se.Status, "scimType", se.ScimType)
		})
		return sent, nil
	}
	return len(bodies), nil
}

// sendBodies sends PATCH bodies in order and returns how many it sent.
func (d *Destination) sendBodies(ctx context.Context, ep *lang.Endpoint, id string, bodies [][]byte) (int, error) {
	for i, body := range bodies {
		if _, err := d.write(ctx, http.MethodPatch, ep.Path, id, body); err != nil {
			return i + 1, fmt.Errorf("patch %s/%s: %w", ep.Path, id, err)
		}
	}
	return len(bodies), nil
}

// replaceBodies returns the PATCH bodies that turn current into desired
// without value filters.
func (d *Destination) replaceBodies(current, desired []byte, managed []scim.Path, ep *lang.Endpoint) ([][]byte, error) {
	opts := d.diffOptions(ep)
	ops, err := scim.Diff(current, desired, managed, opts)
	if err != nil {
		return nil, err
	}
	if ops, err = scim.ReplaceFiltered(current, ops, opts); err != nil {
		return nil, err
	}
	return scim.PatchBodies(ops, d.maxOps()), nil
}

// refusedFilter reports whether err may be the service refusing body for a
// value filter in one of its paths: 400 with scimType invalidPath,
// noTarget or invalidFilter, or with none (services differ), to a body
// that has such a path. A 400 of that kind can have another cause (a plain
// 400 for a bad value); then the replace form is refused too, the change
// fails with both answers, and the destination keeps the filter form.
func refusedFilter(err error, body []byte) bool {
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		return false
	}
	switch se.ScimType {
	case "", scim.ScimTypeInvalidPath, scim.ScimTypeNoTarget, scim.ScimTypeInvalidFilter:
	default:
		return false
	}
	filtered := false
	gjson.GetBytes(body, "Operations").ForEach(func(_, op gjson.Result) bool {
		filtered = strings.ContainsRune(op.Get("path").String(), '[')
		return !filtered
	})
	return filtered
}
