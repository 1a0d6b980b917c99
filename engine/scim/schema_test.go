package scim

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestBuiltinSchemas(t *testing.T) {
	all := BuiltinSchemas()
	var ids []string
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	if want := []string{URNUser, URNGroup, URNEnterpriseUser}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids = %v, want %v", ids, want)
	}
	if Builtin("urn:ietf:params:scim:schemas:core:2.0:user") != all[0] {
		t.Error("Builtin is not case-insensitive")
	}
	if Builtin("urn:nope") != nil {
		t.Error("Builtin(unknown) != nil")
	}
	if Builtin(URNUser).Name != "User" || Builtin(URNGroup).Name != "Group" || Builtin(URNEnterpriseUser).Name != "EnterpriseUser" {
		t.Error("schema names")
	}
	// The slice is a copy.
	all[0] = nil
	if BuiltinSchemas()[0] == nil {
		t.Error("BuiltinSchemas returns shared slice")
	}
}

func TestBuiltinUser(t *testing.T) {
	u := Builtin(URNUser)
	if got := len(u.Attributes); got != 21 {
		t.Errorf("User has %d attributes, want 21 (RFC 7643 §8.7.1)", got)
	}
	un := u.Attr("USERNAME")
	if un == nil || un.Name != "userName" || un.Type != TypeString || un.CaseExact || !un.Required ||
		un.Uniqueness != "server" || un.Mutability != ReadWrite || un.Returned != "default" {
		t.Fatalf("userName = %+v", un)
	}
	em := u.Attr("emails")
	if em == nil || !em.MultiValued || em.Type != TypeComplex {
		t.Fatalf("emails = %+v", em)
	}
	var subs []string
	for _, s := range em.SubAttributes {
		subs = append(subs, s.Name)
	}
	if want := []string{"value", "display", "type", "primary"}; !reflect.DeepEqual(subs, want) {
		t.Errorf("emails sub-attributes = %v, want %v", subs, want)
	}
	if ty := em.Sub("Type"); ty == nil || !reflect.DeepEqual(ty.CanonicalValues, []string{"work", "home", "other"}) {
		t.Errorf("emails.type = %+v", ty)
	}
	if p := em.Sub("primary"); p == nil || p.Type != TypeBoolean {
		t.Errorf("emails.primary = %+v", p)
	}
	if pw := u.Attr("password"); pw.Mutability != WriteOnly || pw.Returned != "never" {
		t.Errorf("password = %+v", pw)
	}
	if g := u.Attr("groups"); g.Mutability != ReadOnly || !reflect.DeepEqual(g.Sub("$ref").ReferenceTypes, []string{"User", "Group"}) {
		t.Errorf("groups = %+v", g)
	}
	if x := u.Attr("x509Certificates").Sub("value"); x.Type != TypeBinary {
		t.Errorf("x509Certificates.value = %+v", x)
	}
	if p := u.Attr("photos").Sub("value"); p.Type != TypeReference || !reflect.DeepEqual(p.ReferenceTypes, []string{"external"}) {
		t.Errorf("photos.value = %+v", p)
	}
	// RFC 7643 §2.2 defaults where §8.7.1 leaves characteristics out.
	if a := u.Attr("active"); a.Uniqueness != "none" || a.CaseExact {
		t.Errorf("active defaults = %+v", a)
	}
	if u.Attr("nope") != nil || em.Sub("nope") != nil {
		t.Error("unknown names must give nil")
	}
	var nilSchema *Schema
	var nilAttr *Attribute
	if nilSchema.Attr("x") != nil || nilAttr.Sub("x") != nil {
		t.Error("nil receivers")
	}
}

func TestBuiltinGroupAndEnterprise(t *testing.T) {
	g := Builtin(URNGroup)
	if dn := g.Attr("displayName"); dn == nil || !dn.Required {
		t.Errorf("Group displayName = %+v (erratum: required)", dn)
	}
	m := g.Attr("members")
	if m == nil || !m.MultiValued || m.Sub("value").Mutability != Immutable {
		t.Errorf("members = %+v", m)
	}
	e := Builtin(URNEnterpriseUser)
	var names []string
	for _, a := range e.Attributes {
		names = append(names, a.Name)
	}
	if want := []string{"employeeNumber", "costCenter", "organization", "division", "department", "manager"}; !reflect.DeepEqual(names, want) {
		t.Errorf("enterprise attributes = %v", names)
	}
	mgr := e.Attr("manager")
	if mgr.Type != TypeComplex || mgr.MultiValued {
		t.Fatalf("manager = %+v", mgr)
	}
	var subs []string
	for _, s := range mgr.SubAttributes {
		subs = append(subs, s.Name)
	}
	if want := []string{"value", "$ref", "displayName"}; !reflect.DeepEqual(subs, want) {
		t.Errorf("manager sub-attributes = %v", subs)
	}
	if r := mgr.Sub("$REF"); r.Type != TypeReference || !reflect.DeepEqual(r.ReferenceTypes, []string{"User"}) {
		t.Errorf("manager.$ref = %+v", r)
	}
	if d := mgr.Sub("displayName"); d.Mutability != ReadOnly {
		t.Errorf("manager.displayName = %+v", d)
	}
}

// TestEmbeddedFilesAreRFCShaped checks the embedded documents are plain JSON
// with the RFC 7643 §8.7.1 top-level members.
func TestEmbeddedFilesAreRFCShaped(t *testing.T) {
	for _, name := range builtinFiles {
		t.Run(name, func(t *testing.T) {
			data, err := schemaFS.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"id", "name", "description", "attributes", "meta"} {
				if _, ok := doc[k]; !ok {
					t.Errorf("missing %q", k)
				}
			}
		})
	}
}

func TestParseSchema(t *testing.T) {
	t.Run("normalizes and defaults", func(t *testing.T) {
		s, err := ParseSchema([]byte(`{"id":"urn:acme:Dev","name":"Dev","attributes":[
			{"name":"serial","type":"STRING","mutability":"READONLY","returned":"Always","uniqueness":"GLOBAL","caseExact":true},
			{"name":"plain"},
			{"name":"when","type":"datetime"},
			{"name":"ports","type":"Complex","multiValued":true,"subAttributes":[{"name":"n","type":"integer"}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := &Schema{ID: "urn:acme:Dev", Name: "Dev", Attributes: []*Attribute{
			{Name: "serial", Type: "string", Mutability: "readOnly", Returned: "always", Uniqueness: "global", CaseExact: true},
			{Name: "plain", Type: "string", Mutability: "readWrite", Returned: "default", Uniqueness: "none"},
			{Name: "when", Type: "dateTime", Mutability: "readWrite", Returned: "default", Uniqueness: "none"},
			{Name: "ports", Type: "complex", MultiValued: true, Mutability: "readWrite", Returned: "default", Uniqueness: "none",
				SubAttributes: []*Attribute{{Name: "n", Type: "integer", Mutability: "readWrite", Returned: "default", Uniqueness: "none"}}},
		}}
		if !reflect.DeepEqual(s, want) {
			got, _ := json.Marshal(s)
			t.Fatalf("got %s", got)
		}
	})
	for _, tt := range []struct{ name, doc, msg string }{
		{"not json", `{`, "unexpected end"},
		{"no id", `{"attributes":[]}`, "missing id"},
		{"bad type", `{"id":"u","attributes":[{"name":"a","type":"float"}]}`, `attribute u:a: unknown type "float"`},
		{"bad mutability", `{"id":"u","attributes":[{"name":"a","mutability":"sometimes"}]}`, "unknown mutability"},
		{"bad name", `{"id":"u","attributes":[{"name":"1a"}]}`, "invalid name"},
		{"subs on simple", `{"id":"u","attributes":[{"name":"a","subAttributes":[{"name":"b"}]}]}`, "sub-attributes on a string attribute"},
		{"bad sub", `{"id":"u","attributes":[{"name":"a","type":"complex","subAttributes":[{"name":"b","returned":"x"}]}]}`, "attribute u:a.b: unknown returned"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchema([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestParseSchemas(t *testing.T) {
	one := `{"id":"urn:a","attributes":[{"name":"x"}]}`
	two := `{"id":"urn:b","attributes":[]}`
	for _, tt := range []struct{ name, doc string }{
		{"array", `[` + one + `,` + two + `]`},
		{"list response", `{"schemas":["` + URNListResponse + `"],"totalResults":2,"Resources":[` + one + `,` + two + `]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSchemas([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].ID != "urn:a" || got[1].ID != "urn:b" {
				t.Fatalf("got %+v", got)
			}
		})
	}
	t.Run("single", func(t *testing.T) {
		got, err := ParseSchemas([]byte(one))
		if err != nil || len(got) != 1 || got[0].Attr("X") == nil {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("bad member", func(t *testing.T) {
		_, err := ParseSchemas([]byte(`[` + one + `,{}]`))
		if err == nil || !strings.Contains(err.Error(), "schema 1") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestResolve(t *testing.T) {
	user, group, ent := Builtin(URNUser), Builtin(URNGroup), Builtin(URNEnterpriseUser)
	exts := []*Schema{ent}
	tests := []struct {
		path     string
		core     *Schema
		wantAttr string // name of the returned definition; "" for nil
	}{
		{`userName`, user, "userName"},
		{`USERNAME`, user, "userName"},
		{`name.givenName`, user, "givenName"},
		{`emails[type eq "work"].value`, user, "value"},
		{`emails[type eq "work" and primary eq true].value`, user, "value"},
		{`emails[type eq "work"]`, user, "emails"},
		{`emails`, user, "emails"},
		{`emails.value`, user, "value"},
		{`password`, user, "password"},
		{`externalId`, user, "externalId"},
		{`externalid`, group, "externalId"},
		{`urn:ietf:params:scim:schemas:core:2.0:User:displayName`, user, "displayName"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`, user, "employeeNumber"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, user, "value"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref`, user, "$ref"},
		{`members.value`, group, "value"},
		{`members[type eq "User"].value`, group, "value"},
		{`displayName`, group, "displayName"},
		// unchecked
		{`anything.goes`, nil, ""},
		{`urn:acme:ext:1.0:Thing:serial`, user, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := ParsePath(tt.path, []string{URNUser, URNGroup, URNEnterpriseUser})
			if err != nil {
				t.Fatal(err)
			}
			a, err := Resolve(p, tt.core, exts)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			got := ""
			if a != nil {
				got = a.Name
			}
			if got != tt.wantAttr {
				t.Fatalf("got %q, want %q", got, tt.wantAttr)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	user, group, ent := Builtin(URNUser), Builtin(URNGroup), Builtin(URNEnterpriseUser)
	tests := []struct {
		path       string
		core       *Schema
		part, name string
		candidate  string // must be among Candidates; "" for none expected
		msg        string // substring of Error()
	}{
		{`usrName`, user, "attr", "usrName", "userName", `unknown attribute "usrName" in schema ` + URNUser + `; did you mean "userName"?`},
		{`emial`, user, "attr", "emial", "emails", `did you mean "emails"?`},
		{`id`, user, "attr", "id", "", `attribute "id" is read-only and never sent`},
		{`meta.created`, user, "attr", "meta", "", "read-only and never sent"},
		{`groups[type eq "direct"].value`, user, "attr", "groups", "", "read-only and never sent"},
		{`userName[type eq "work"]`, user, "filter", "userName", "", `attribute "userName" is not multi-valued`},
		{`name[givenName eq "x"].familyName`, user, "filter", "name", "", "not multi-valued"},
		{`emails[tpye eq "work"].value`, user, "filter", "tpye", "type", `unknown sub-attribute "tpye" in filter on "emails"; did you mean "type"?`},
		{`emails[primary eq "yes"].value`, user, "filter", "primary", "", `filter compares boolean sub-attribute "primary" of "emails" with "yes"`},
		{`emails[type eq true].value`, user, "filter", "type", "", "filter compares string"},
		{`userName.value`, user, "sub", "value", "", `attribute "userName" is of type string and has no sub-attributes`},
		{`name.givenname2`, user, "sub", "givenname2", "givenName", `unknown sub-attribute "givenname2" of "name"; did you mean "givenName"?`},
		{`emails[type eq "work"].vaule`, user, "sub", "vaule", "value", `did you mean "value"?`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName`, user, "sub", "displayName", "", `sub-attribute "displayName" of "manager" is read-only and never sent`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeNumber`, user, "attr", "employeNumber", "employeeNumber", `in schema ` + URNEnterpriseUser + `; did you mean "employeeNumber"?`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.vlaue`, user, "sub", "vlaue", "$ref", `did you mean "value"?`},
		{`urn:ietf:params:scim:schemas:core:2.0:Group:displayName`, user, "urn", URNGroup, URNUser, "is not a schema of this resource type"},
		{`userName`, group, "attr", "userName", "displayName", `unknown attribute "userName" in schema ` + URNGroup},
		{`schemas`, user, "attr", "schemas", "", `attribute "schemas" is set by scimsync`},
		{`externalID.x`, user, "sub", "x", "", `attribute "externalId" is of type string`},
		{`extrnalId`, user, "attr", "extrnalId", "externalId", `did you mean "externalId"?`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := ParsePath(tt.path, []string{URNUser, URNGroup, URNEnterpriseUser})
			if err != nil {
				t.Fatal(err)
			}
			a, err := Resolve(p, tt.core, []*Schema{ent})
			var re *ResolveError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, %v; want *ResolveError", a, err)
			}
			if re.Part != tt.part || re.Name != tt.name {
				t.Errorf("Part, Name = %q, %q; want %q, %q", re.Part, re.Name, tt.part, tt.name)
			}
			if tt.candidate != "" && !slices.Contains(re.Candidates, tt.candidate) {
				t.Errorf("Candidates %v lack %q", re.Candidates, tt.candidate)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.msg)
			}
			if strings.HasSuffix(re.Msg, ".") || re.Msg != strings.ToLower(re.Msg[:1])+re.Msg[1:] {
				t.Errorf("Msg style: %q", re.Msg)
			}
		})
	}
	t.Run("candidates leave out read-only attributes", func(t *testing.T) {
		p, _ := ParsePath("nope", nil)
		_, err := Resolve(p, user, nil)
		var re *ResolveError
		if !errors.As(err, &re) {
			t.Fatal(err)
		}
		for _, c := range re.Candidates {
			if c == "id" || c == "meta" || c == "groups" {
				t.Errorf("read-only candidate %q", c)
			}
		}
		if !slices.Contains(re.Candidates, "userName") {
			t.Errorf("candidates %v", re.Candidates)
		}
	})
}
