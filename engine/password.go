package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// Password sync, the SCIM side (lang/password_change.go has the rules).
//
// A create carries the password in its POST body like any mapping. An
// update cannot find it by diffing, since password is writeOnly and never
// returned: when the change carried a new password (lang.Result
// .PasswordChange), the update sends one more PATCH, {"op":"replace",
// "path":"password","value":…}, after the others (with update = "put" the
// PUT body carries it and is sent even when nothing else differs). A
// service that refuses password writes answers 400 mutability or 403: the
// change fails with a *PasswordRefusedError, whose message says so and how
// to stop sending passwords (scim { passwords = "skip" }); what the change
// did besides the password is already applied.

// PasswordRefusedError is a service's refusal of a password write. It
// never holds the value.
type PasswordRefusedError struct {
	Method, Path string
	Err          error // the *scim.Error, its body already free of the value (scim.PasswordValues)
}

func (e *PasswordRefusedError) Error() string {
	done := "the rest of the change was applied"
	if e.Method == http.MethodPost {
		done = "the resource was not created"
	}
	return fmt.Sprintf("the service refused the password (%s %s): it does not accept password writes over SCIM; "+
		"%s; set scim { passwords = \"skip\" } to stop sending passwords to it: %v", e.Method, e.Path, done, e.Err)
}

// Unwrap returns the service's error.
func (e *PasswordRefusedError) Unwrap() error { return e.Err }

// IsPasswordRefused reports whether err is a service's refusal of a
// password write.
func IsPasswordRefused(err error) bool {
	var pe *PasswordRefusedError
	return errors.As(err, &pe)
}

// refusesPassword reports whether a service's answer to a write that
// carried a password refuses the password: 403, or 400 with scimType
// mutability (RFC 7644 §3.12: "the attempted modification is not
// compatible with the target attribute's mutability").
func refusesPassword(err error) bool {
	return scim.IsStatus(err, http.StatusForbidden) ||
		scim.IsStatus(err, http.StatusBadRequest) && scim.IsScimType(err, scim.ScimTypeMutability)
}

// passwordPatchBody is the PATCH that sets a password.
func passwordPatchBody(pw string) []byte {
	v, _ := json.Marshal(pw) // a string always marshals
	return []byte(`{"schemas":["` + scim.URNPatchOp + `"],"Operations":[{"op":"replace","path":"password","value":` + string(v) + `}]}`)
}

// withPassword sends the change's new password to the resource out.ID
// after the rest of an update, when the change carried one.
func (d *Destination) withPassword(ctx context.Context, res *lang.Result, out Applied) (Applied, error) {
	pw, ok, err := res.PasswordChange()
	if err != nil || !ok {
		return out, err
	}
	ep := res.Endpoint
	_, err = d.write(ctx, http.MethodPatch, ep.Path, out.ID, passwordPatchBody(pw))
	out.Requests++
	if err != nil {
		if refusesPassword(err) {
			return out, &PasswordRefusedError{Method: http.MethodPatch, Path: ep.Path + "/" + out.ID, Err: err}
		}
		return out, fmt.Errorf("patch %s/%s (the password): %w", ep.Path, out.ID, err)
	}
	out.Outcome = Updated
	out.Attributes, out.PatchOps = append(out.Attributes, "password"), out.PatchOps+1 // the name, never the value
	return out, nil
}

// hasPasswordChange reports whether an update must be sent for the
// change's new password even when nothing else differs (update = "put").
func hasPasswordChange(res *lang.Result) bool {
	_, ok, err := res.PasswordChange()
	return ok && err == nil
}

// bodyPasswordRefused explains a create (POST) or a PUT refused for the
// password its body carried: the service answered 403 or 400 mutability.
func bodyPasswordRefused(err error, method string, body []byte, path string) error {
	if len(scim.PasswordValues(body)) == 0 || !refusesPassword(err) {
		return err
	}
	return &PasswordRefusedError{Method: method, Path: path, Err: err}
}

// Retries of a password change. The store never holds the clear value:
// a parked record keeps PasswordAt, the source position of the change
// whose password is still to be sent, and a retry reads the password
// again there. A change that merely waits (an outage, a reference not in
// SCIM yet) keeps its password in memory only, and a run stopped meanwhile
// reads the change again from the source at the next start.

// passwordAt is the PasswordAt of a record replacing old for a change
// at pos: that change's position when it carried a new password (a retry
// re-reads the pending one and is parked at old's own position, which
// keeps old's PasswordAt), old's otherwise.
func passwordAt(old state.Parked, ch *lang.Change, pos string) string {
	if !ch.NewPassword.IsZero() && (old.PasswordAt == "" || pos != old.Position) {
		return pos
	}
	return old.PasswordAt
}

// passwordPending reports whether the entry's parked record must outlive
// the change just applied: it still owes a password, which that change
// (carrying none of its own) did not send.
func (r *Runner) passwordPending(key string, ch *lang.Change) bool {
	if !ch.NewPassword.IsZero() {
		return false
	}
	r.parkMu.Lock()
	_, parked := r.parked[key]
	r.parkMu.Unlock()
	if !parked {
		return false
	}
	pending := false
	_ = r.Store.View(func(t *state.Tx) error {
		p, ok, err := t.ParkedKey(key)
		pending = ok && p.PasswordAt != ""
		return err
	})
	return pending
}

// passwordAgain gives the change a retry applies (the entry as it is now)
// the password its parked record still owes. A changelog source reads it
// again from the change record; when the record is gone (trimmed) the
// error says so, and the rest of the entry is applied all the same. Other
// sources (syncrepl, LDIF) read the entry's clear-text userPassword as it
// is now: a hashed one means the pending password was replaced since, and
// nothing is owed.
func (r *Runner) passwordAgain(ctx context.Context, p *state.Parked, ch *lang.Change) error {
	if p.PasswordAt == "" || ch.Type == lang.Delete {
		return nil
	}
	if pr, ok := r.Source.(source.PasswordReader); ok {
		pw, err := pr.PasswordAt(ctx, p.PasswordAt)
		if err != nil {
			return fmt.Errorf("the password change at %s: %w", p.PasswordAt, err)
		}
		ch.NewPassword = pw
		return nil
	}
	if r.Pipe.Source.Kind == "changelog" {
		return fmt.Errorf("the new password of %s can be read again only by `scimsync run`, which reads the changelog: "+
			"it stays parked until then", p.PasswordAt)
	}
	for _, v := range ch.Entry.Get("userPassword") {
		if lang.IsClearTextPassword(v) {
			ch.NewPassword = secret.New(v)
			break
		}
	}
	return nil
}
