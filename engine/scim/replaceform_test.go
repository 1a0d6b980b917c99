package scim

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// TestReplaceFiltered: the operations Diff gives, rewritten without value filters: one replace
// of each attribute a filter reached, holding current's elements with the operations applied
// (so elements the pipe does not manage stay), at the place of the attribute's first operation.
func TestReplaceFiltered(t *testing.T) {
	const twoMails = `"emails":[{"type":"work","value":"w@x"},{"type":"home","value":"h@x","display":"H"}]`
	for _, tt := range []struct {
		name             string
		core             string
		current, desired string
		managed          []string
		want             string // formatOps of the rewrite
	}{
		{name: "removed work email, the home one stays; the surname is untouched",
			current: `{"userName":"a","name":{"familyName":"Old"},` + twoMails + `}`, desired: `{"userName":"a","name":{"familyName":"New"}}`,
			managed: []string{`emails[type eq "work"].value`, "name.familyName"},
			want:    "replace emails [{\"type\":\"home\",\"value\":\"h@x\",\"display\":\"H\"}]\nreplace name.familyName \"New\""},
		{name: "surname first keeps its place",
			current: `{"userName":"a","name":{"familyName":"Old"},` + twoMails + `}`, desired: `{"userName":"a","name":{"familyName":"New"}}`,
			managed: []string{"name.familyName", `emails[type eq "work"].value`},
			want:    "replace name.familyName \"New\"\nreplace emails [{\"type\":\"home\",\"value\":\"h@x\",\"display\":\"H\"}]"},
		{name: "the last element removed removes the attribute",
			current: `{"userName":"a","emails":[{"type":"work","value":"w@x"}]}`, desired: `{"userName":"a"}`,
			managed: []string{`emails[type eq "work"].value`}, want: `remove emails`},
		{name: "changed value of a filtered element, current's spelling of the filter",
			current: `{"userName":"a","emails":[{"type":"Work","value":"w@x","primary":true},{"type":"home","value":"h@x"}]}`,
			desired: `{"userName":"a","emails":[{"type":"work","value":"w2@x"}]}`,
			managed: []string{`emails[type eq "work"].value`},
			want:    `replace emails [{"type":"Work","value":"w2@x","primary":true},{"type":"home","value":"h@x"}]`},
		{name: "removed sub-attribute of a filtered element",
			current: `{"userName":"a","emails":[{"type":"work","value":"w@x","primary":true}]}`,
			desired: `{"userName":"a","emails":[{"type":"work","value":"w@x"}]}`,
			managed: []string{`emails[type eq "work"].value`, `emails[type eq "work"].primary`},
			want:    `replace emails [{"type":"work","value":"w@x"}]`},
		{name: "an add with no filter stays an add",
			current: `{"userName":"a","emails":[{"type":"home","value":"h@x"}]}`,
			desired: `{"userName":"a","emails":[{"type":"work","value":"w@x"}]}`,
			managed: []string{`emails[type eq "work"].value`},
			want:    `add emails [{"type":"work","value":"w@x"}]`},
		{name: "whole list: removes and adds become one replace",
			current: `{"userName":"a","phoneNumbers":[{"value":"1"},{"value":"2","display":null}]}`,
			desired: `{"userName":"a","phoneNumbers":[{"value":"2"},{"value":"3"}]}`,
			managed: []string{"phoneNumbers"},
			want:    `replace phoneNumbers [{"value":"2"},{"value":"3"}]`},
		{name: "members: the kept member keeps what the service added", core: "Group",
			current: `{"displayName":"g","members":[{"value":"u1"},{"value":"u2","display":"U2","$ref":"https://x/Users/u2"}]}`,
			desired: `{"displayName":"g","members":[{"value":"u2"},{"value":"u3"}]}`,
			managed: []string{"members"},
			want:    `replace members [{"value":"u2","display":"U2","$ref":"https://x/Users/u2"},{"value":"u3"}]`},
		{name: "simple multi-valued attribute without schema", core: "none",
			current: `{"tags":["a","b"]}`, desired: `{"tags":["b"]}`, managed: []string{`tags[value eq "a"]`},
			want: `replace tags ["b"]`},
		{name: "nothing filtered: the same operations",
			current: `{"userName":"a"}`, desired: `{"userName":"b"}`, managed: []string{"userName"},
			want: `replace userName "b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := newOpts(t, tt.core, 0)
			ops, err := Diff([]byte(tt.current), []byte(tt.desired), parsePaths(t, tt.managed), opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReplaceFiltered([]byte(tt.current), ops, opts)
			if err != nil {
				t.Fatal(err)
			}
			if s := formatOps(got); s != tt.want {
				t.Errorf("ReplaceFiltered(%s):\n got:\n%s\nwant:\n%s", formatOps(ops), s, tt.want)
			}
			if HasFilteredPath(got) {
				t.Errorf("a filtered path is left: %s", formatOps(got))
			}
		})
	}
}

// TestReplaceFilteredCases runs the rewrite over every Diff case: no filtered path is left, every
// path parses, and each value is JSON.
func TestReplaceFilteredCases(t *testing.T) {
	for _, tt := range diffCases {
		t.Run(tt.name, func(t *testing.T) {
			opts := newOpts(t, tt.core, tt.max)
			ops, err := Diff([]byte(tt.current), []byte(tt.desired), parsePaths(t, tt.managed), opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReplaceFiltered([]byte(tt.current), ops, opts)
			if err != nil {
				t.Fatalf("ReplaceFiltered(%s): %v", formatOps(ops), err)
			}
			if HasFilteredPath(got) {
				t.Errorf("a filtered path is left: %s", formatOps(got))
			}
			for _, op := range got {
				if _, err := ParsePath(op.Path, knownURNs); err != nil {
					t.Errorf("path %q: %v", op.Path, err)
				}
				if op.Value != nil && !gjson.ValidBytes(op.Value) {
					t.Errorf("%s %s: value is not JSON: %s", op.Op, op.Path, op.Value)
				}
			}
		})
	}
}

// TestReplaceFormServer applies each oracle case whose PATCH has a filtered path twice on the
// SCIMMY server: the filter form to one copy of current, the replace form to another copy
// through a client the server is strict with (it refuses value filters). Both copies must end
// the same, whole resource compared: the replace form keeps what the filter form keeps.
func TestReplaceFormServer(t *testing.T) {
	env := scimtest.Server(t)
	filterCl, _ := serverClient(t, env, Retry{}, nil)
	replaceCl, ua := serverClient(t, env, Retry{}, nil)
	env.Strict(t, scimtest.Strict{UserAgent: ua, RejectFilteredPaths: true})
	ctx := context.Background()
	ran := 0
	for _, c := range oracleCases(t) {
		opts := newOpts(t, c.core, c.max)
		ops, err := Diff(c.current, c.desired, c.managed, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !HasFilteredPath(ops) {
			continue
		}
		ran++
		t.Run(c.name, func(t *testing.T) {
			endpoint, name := "/Users", "userName"
			if c.core == "Group" {
				endpoint, name = "/Groups", "displayName"
			}
			current, desired := serverDocs(t, ctx, filterCl, c)
			// The second copy differs only in its name (userName is unique).
			rename := func(doc []byte) []byte {
				if v := gjson.GetBytes(doc, name); v.Exists() {
					doc, _ = sjson.SetBytes(doc, name, v.Str+"-b")
				}
				return doc
			}
			results := map[string][]byte{}
			for _, form := range []struct {
				name             string
				cl               *Client
				current, desired []byte
			}{{"filter", filterCl, current, desired}, {"replace", replaceCl, rename(current), rename(desired)}} {
				created, err := form.cl.Create(ctx, endpoint, form.current)
				if err != nil {
					t.Fatalf("creating current: %v\n%s", err, form.current)
				}
				id := gjson.GetBytes(created, "id").String()
				t.Cleanup(func() { _ = filterCl.Delete(context.Background(), endpoint, id) })
				ops, err := Diff(created, form.desired, c.managed, opts)
				if err != nil {
					t.Fatal(err)
				}
				if form.name == "replace" {
					if ops, err = ReplaceFiltered(created, ops, opts); err != nil {
						t.Fatal(err)
					}
				}
				for _, body := range PatchBodies(ops, c.max) {
					if _, err := form.cl.Patch(ctx, endpoint, id, body); err != nil {
						t.Fatalf("%s form: PATCH rejected: %v\nbody: %s", form.name, err, body)
					}
				}
				after, err := form.cl.Get(ctx, endpoint+"/"+id)
				if err != nil {
					t.Fatal(err)
				}
				checkConverged(t, "SCIMMY "+form.name+" form", after, c, form.desired, opts)
				for _, k := range []string{"id", "meta", name} {
					after, _ = sjson.DeleteBytes(after, k)
				}
				results[form.name] = after
			}
			if f, r := sortedJSON(results["filter"]), sortedJSON(results["replace"]); f != r {
				t.Errorf("the replace form ends elsewhere than the filter form:\nfilter:  %s\nreplace: %s", f, r)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no oracle case has a filtered path")
	}
	// The strict server did refuse the filter form: the test proves something.
	body := []byte(`{"schemas":["` + URNPatchOp + `"],"Operations":[{"op":"remove","path":"emails[type eq \"other\"]"}]}`)
	created, err := replaceCl.Create(ctx, "/Users", []byte(`{"schemas":["`+URNUser+`"],"userName":`+Quote(scimtest.Unique("strict"))+`}`))
	if err != nil {
		t.Fatal(err)
	}
	id := gjson.GetBytes(created, "id").String()
	t.Cleanup(func() { _ = filterCl.Delete(context.Background(), "/Users", id) })
	if _, err := replaceCl.Patch(ctx, "/Users", id, body); !IsStatus(err, 400) || !IsScimType(err, ScimTypeInvalidPath) {
		t.Errorf("strict server answered a filtered path with %v, want 400 invalidPath", err)
	}
}

// sortedJSON renders a JSON document with object keys sorted, for comparing documents.
func sortedJSON(doc []byte) string {
	var b strings.Builder
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		switch {
		case v.IsObject():
			var keys []string
			v.ForEach(func(k, _ gjson.Result) bool {
				keys = append(keys, k.Str)
				return true
			})
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(Quote(k) + ":")
				walk(v.Get(EscapeKey(k)))
			}
			b.WriteByte('}')
		case v.IsArray():
			b.WriteByte('[')
			for i, e := range v.Array() {
				if i > 0 {
					b.WriteByte(',')
				}
				walk(e)
			}
			b.WriteByte(']')
		default:
			b.WriteString(v.Raw)
		}
	}
	walk(gjson.ParseBytes(doc))
	return b.String()
}
