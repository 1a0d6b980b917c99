package engine

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// What a run did with a change, beyond a Destination's outcomes: for the
// sync log and the metrics of `run --listen`.
const (
	DroppedChange Outcome = "dropped" // read and not applied (the source said why)
	ParkedChange  Outcome = "parked"  // failed for good: recorded for `failed` and retried later
	HealedChange  Outcome = "healed"  // a parked entry that went through at last
)

// ChangeRecord is what became of one change in a run: one line of the
// sync log, one count of the metrics. It carries names (class, endpoint,
// attribute names), never a value.
type ChangeRecord struct {
	Op       string // add, modify, delete, modrdn
	DN       string
	Class    string // the class that took the change; "" when none did
	Endpoint string
	ID       string // the SCIM id, when there is one
	Outcome  Outcome
	// Attributes are the SCIM attributes a create set or an update
	// changed: names only, so that an operator sees what moved without the
	// log holding personal data.
	Attributes []string
	PatchOps   int           // PATCH operations sent (0 for a create, a PUT or a delete)
	Requests   int           // write requests sent
	Attempts   int           // tries of the change in this run, the first included
	Took       time.Duration // from the first try to the outcome, waits included
}

// observe hands a record to Runner.Observe, if set.
func (r *Runner) observe(rec ChangeRecord) {
	if r.Observe != nil {
		r.Observe(rec)
	}
}

// logApplied counts, logs and observes what Apply did with a change that
// class took after attempts tries (class is "" when none did).
func (r *Runner) logApplied(ch *lang.Change, class string, a Applied, start time.Time, attempts int) {
	rec := ChangeRecord{Op: ch.Type.String(), DN: ch.DN, Class: class, ID: a.ID, Outcome: a.Outcome,
		Attributes: a.Attributes, PatchOps: a.PatchOps, Requests: a.Requests, Attempts: attempts, Took: time.Since(start)}
	if a.Endpoint != nil {
		rec.Endpoint = a.Endpoint.Name
	}
	defer r.observe(rec)
	switch a.Outcome {
	case OutOfScope:
		r.Stats.OutOfScope.Add(1)
		r.Log.Debug("out of scope", "op", rec.Op, "dn", ch.DN)
		return
	case Untouched:
		r.Stats.Dropped.Add(1)
		if ch.Type == lang.Delete {
			r.Log.Info("delete not synchronized: the class that owns the resource leaves deletes out", "dn", ch.DN, "class", class, "id", a.ID)
			return
		}
		r.Log.Debug("untouched: the owning class does not synchronize this change, or reads nothing it changed", "op", rec.Op, "dn", ch.DN, "class", class)
		return
	case Unchanged:
		r.Stats.Unchanged.Add(1)
	case Deleted, Deactivated, Absent:
		r.Stats.Deleted.Add(1)
	default:
		r.Stats.Applied.Add(1)
	}
	args := []any{"op", rec.Op, "dn", ch.DN, "class", class, "endpoint", rec.Endpoint, "id", a.ID}
	if len(rec.Attributes) > 0 {
		args = append(args, "attrs", rec.Attributes)
	}
	if rec.PatchOps > 0 {
		args = append(args, "patchOps", rec.PatchOps)
	}
	args = append(args, "attempts", attempts, "ms", rec.Took.Milliseconds())
	r.Log.Info(string(a.Outcome), args...)
}

// patchSummary returns the attribute names PATCH bodies change and how
// many operations they hold: what the sync log shows of an update.
// The bodies are PatchBodies' own (valid, compact JSON): read with gjson,
// as the rest of the engine reads JSON, rather than decoded by reflection.
func patchSummary(bodies [][]byte) ([]string, int) {
	var all []scim.PatchOp
	for _, b := range bodies {
		if !gjson.ValidBytes(b) {
			continue
		}
		gjson.GetBytes(b, "Operations").ForEach(func(_, op gjson.Result) bool {
			o := scim.PatchOp{Op: op.Get("op").Str, Path: op.Get("path").Str}
			if v := op.Get("value"); v.Exists() {
				o.Value = json.RawMessage(v.Raw)
			}
			all = append(all, o)
			return true
		})
	}
	return OpAttributes(all), len(all)
}

// bodyAttributes returns the attribute names a resource body sets, sorted
// (schemas left out): what the sync log shows of a create.
func bodyAttributes(body []byte) []string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		if k != "schemas" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}
