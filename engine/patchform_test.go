package engine

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/lang"
)

// TestPatchFormFallback is issue 12 #13 against the SCIM test server in strict mode, which
// refuses PATCH paths with a value filter as some real services do. A change that removes the
// work email (remove emails[type eq "work"]) and sets a new surname must arrive whole: the
// refused PATCH is sent again with emails replaced whole, keeping the email the pipe does not
// manage. The destination then remembers the form: the same change to a second user goes in
// one PATCH without a filter. The warning is logged once, without values. Before the fallback
// the change failed with the 400 and the surname never arrived.
func TestPatchFormFallback(t *testing.T) {
	empty := ""
	for _, tt := range []struct {
		name     string
		scimType *string // what the strict server answers; nil: its default, invalidPath
		setting  string  // the script's patchFilters
		maxOps   int     // operations per PATCH; 1 puts the filtered path in the second body
	}{
		{name: "invalidPath"},
		{name: "noTarget", scimType: ptr("noTarget")},
		{name: "invalidFilter", scimType: ptr("invalidFilter")},
		{name: "plain 400", scimType: &empty},
		{name: "patchFilters replace", setting: "replace"},
		// The surname lands in a first PATCH; the refused filter comes second, so the
		// replace form is built from the resource read again.
		{name: "refused in a later request", maxOps: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			script := strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete").Replace(destScript)
			if tt.setting != "" {
				const line = `update = "patch"`
				if !strings.Contains(script, line) {
					t.Fatalf("destScript has no %s line to add patchFilters after", line)
				}
				script = strings.Replace(script, line, line+"\n  patchFilters = "+`"`+tt.setting+`"`, 1)
			}
			f := newScriptFixture(t, script)
			f.dest.MaxOpsPerRequest = tt.maxOps
			var logs bytes.Buffer
			old := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
			t.Cleanup(func() { slog.SetDefault(old) })

			// Two users, each with an email the pipe does not manage.
			var ids []string
			for range 2 {
				uid := scimtest.Unique("pform")
				out := f.apply(person(uid), "")
				if out.Outcome != Created {
					t.Fatalf("create = %+v", out)
				}
				if _, err := f.client.Patch(context.Background(), "/Users", out.ID, []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
					`"Operations":[{"op":"add","path":"emails","value":[{"type":"other","value":"kept@example.org"}]}]}`)); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, out.ID)
			}
			f.env.Strict(t, scimtest.Strict{UserAgent: f.ua, RejectFilteredPaths: true, ScimType: tt.scimType})

			for i, id := range ids {
				uid := f.get("/Users/" + id).Get("userName").Str
				mod := person(uid, lang.Attr{Name: "mail"}, lang.Attr{Name: "sn", Values: []string{"Newfamily"}})
				mod.Type = lang.Modify
				before := len(f.env.Requests(t, f.ua))
				res, err := f.ev.Eval(mod, lang.Realtime)
				if err != nil {
					t.Fatal(err)
				}
				out, err := f.dest.Apply(context.Background(), res, id, nil)
				if err != nil {
					t.Fatalf("change %d: %v", i+1, err)
				}
				u := f.get("/Users/" + id)
				if got := u.Get("name.familyName").Str; got != "Newfamily" {
					t.Errorf("change %d: familyName = %q, want Newfamily\n%s", i+1, got, u.Raw)
				}
				if got := u.Get("emails").Raw; gjson.Get(got, "#").Int() != 1 || u.Get("emails.0.value").Str != "kept@example.org" {
					t.Errorf("change %d: emails = %s, want only the unmanaged one", i+1, got)
				}
				var patches []scimtest.Request
				for _, r := range f.env.Requests(t, f.ua)[before:] {
					if r.Method == http.MethodPatch {
						patches = append(patches, r)
					}
				}
				// The first change under the default meets the refusal once; after that,
				// and with patchFilters = "replace" from the start, one PATCH without a filter.
				want := []int{http.StatusOK}
				switch {
				case i == 0 && tt.maxOps == 1:
					want = []int{http.StatusOK, http.StatusBadRequest, http.StatusOK}
				case i == 0 && tt.setting == "":
					want = []int{http.StatusBadRequest, http.StatusOK}
				case tt.maxOps == 1:
					want = []int{http.StatusOK, http.StatusOK} // surname, emails
				}
				var got []int
				for _, p := range patches {
					got = append(got, p.Status)
				}
				if !slices.Equal(got, want) || out.Requests != len(want) {
					t.Fatalf("change %d: PATCH statuses %v and Requests %d, want %v", i+1, got, out.Requests, want)
				}
				last := patches[len(patches)-1]
				for _, p := range gjson.GetBytes(last.Body, "Operations.#.path").Array() {
					if strings.Contains(p.Str, "[") {
						t.Errorf("change %d: the accepted PATCH has a filtered path: %s", i+1, last.Body)
					}
				}
			}
			if f.dest.PatchForm() != "replace" {
				t.Errorf("PatchForm() = %q, want replace", f.dest.PatchForm())
			}
			warns := strings.Count(logs.String(), "level=WARN")
			switch {
			case tt.setting == "" && (warns != 1 || !strings.Contains(logs.String(), "value filter")):
				t.Errorf("want one warning about value filters, got:\n%s", logs.String())
			case tt.setting != "" && warns != 0:
				t.Errorf("patchFilters = %q: want no warning, got:\n%s", tt.setting, logs.String())
			}
			for _, v := range []string{"kept@example.org", "Newfamily", "given.family@example.com"} {
				if strings.Contains(strings.ToLower(logs.String()), strings.ToLower(v)) {
					t.Errorf("the log shows a value (%s):\n%s", v, logs.String())
				}
			}
		})
	}
}

// TestPatchFormRefusedForAnotherReason: a 400 that the replace form does not cure fails the
// change with both answers and leaves the destination in the filter form.
func TestPatchFormRefusedForAnotherReason(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	uid := scimtest.Unique("pform")
	out := f.apply(person(uid), "")
	if out.Outcome != Created {
		t.Fatalf("create = %+v", out)
	}
	f.env.Fault(t, scimtest.Fault{Status: http.StatusBadRequest, Count: 2, Method: http.MethodPatch, UserAgent: f.ua})
	mod := person(uid, lang.Attr{Name: "mail"}, lang.Attr{Name: "sn", Values: []string{"Newfamily"}})
	mod.Type = lang.Modify
	res, err := f.ev.Eval(mod, lang.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.dest.Apply(context.Background(), res, out.ID, nil)
	if err == nil || !strings.Contains(err.Error(), "after the service refused a value filter") || got.Requests != 2 {
		t.Fatalf("Apply = %+v, %v; want the change failed after 2 PATCHes, naming both refusals", got, err)
	}
	if f.dest.PatchForm() != "filter" {
		t.Errorf("PatchForm() = %q, want filter: the replace form was refused too", f.dest.PatchForm())
	}
}

func ptr[T any](v T) *T { return &v }
