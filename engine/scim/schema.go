package scim

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Schema and message URNs (RFC 7643 §8.7.1, §3; RFC 7644 §3.4.2, §3.4.3,
// §3.5.2, §3.12).
const (
	URNUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	URNPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	URNListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	URNError          = "urn:ietf:params:scim:api:messages:2.0:Error"
	URNSearchRequest  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	URNBulkRequest    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	URNBulkResponse   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	URNSchema         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	URNResourceType   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	URNServiceConfig  = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// Attribute types (RFC 7643 §2.3).
const (
	TypeString    = "string"
	TypeBoolean   = "boolean"
	TypeDecimal   = "decimal"
	TypeInteger   = "integer"
	TypeDateTime  = "dateTime"
	TypeReference = "reference"
	TypeBinary    = "binary"
	TypeComplex   = "complex"
)

// Mutability values (RFC 7643 §7).
const (
	ReadOnly  = "readOnly"
	ReadWrite = "readWrite"
	Immutable = "immutable"
	WriteOnly = "writeOnly"
)

// Schema is a SCIM schema definition (RFC 7643 §7). Schemas returned by
// Builtin and BuiltinSchemas are shared and must not be modified.
type Schema struct {
	ID, Name, Description string
	Attributes            []*Attribute
}

// Attribute is an attribute definition of a Schema (RFC 7643 §7), with the
// characteristics of RFC 7643 §2.2. ParseSchema fills in the RFC defaults for
// characteristics a document leaves out: type string, mutability readWrite,
// returned default, uniqueness none, required and caseExact false.
type Attribute struct {
	Name, Type, Description          string // Type: string boolean decimal integer dateTime reference binary complex
	MultiValued, Required, CaseExact bool
	Mutability, Returned, Uniqueness string
	CanonicalValues, ReferenceTypes  []string
	SubAttributes                    []*Attribute
}

// schemaFS holds the schema representations of RFC 7643 §8.7.1: core User
// (schemas/user.json), core Group (schemas/group.json) and the Enterprise
// User extension (schemas/enterprise_user.json).
//
// Changes from the RFC text:
//   - Description strings that the RFC wraps across lines are joined with a
//     single space (the RFC layout is not valid JSON otherwise); the RFC's
//     own double spaces after sentences are kept.
//   - Group "displayName" has "required": true instead of false: RFC 7643
//     §4.2 and the attribute's own description say REQUIRED, and the §8.7.1
//     value is a known erratum.
//
// Left as the RFC prints them (worth knowing, not typos): Group "members"
// has no "display" sub-attribute although §4.2 mentions one; User
// "addresses" has no "primary" sub-attribute although §4.1.2 mentions one;
// Enterprise "manager.value" says "REQUIRED." in its description but has
// "required": false; the common attributes id, externalId and meta (§3.1)
// are in no schema (Resolve knows them separately). Service providers often
// differ; use their /Schemas document (ParseSchemas) when it matters.
//
//go:embed schemas/*.json
var schemaFS embed.FS

// builtinFiles are the embedded RFC 7643 §8.7.1 schema documents, in the
// order BuiltinSchemas returns them.
var builtinFiles = []string{"schemas/user.json", "schemas/group.json", "schemas/enterprise_user.json"}

var builtins = sync.OnceValue(func() []*Schema {
	var out []*Schema
	for _, name := range builtinFiles {
		data, err := schemaFS.ReadFile(name)
		if err != nil {
			panic(err)
		}
		s, err := ParseSchema(data)
		if err != nil {
			panic(fmt.Sprintf("scim: embedded %s: %v", name, err))
		}
		out = append(out, s)
	}
	return out
})

// Builtin returns the built-in schema with the given URN (compared
// case-insensitively): URNUser, URNGroup or URNEnterpriseUser, as RFC 7643
// §8.7.1 defines them; nil if unknown. The result is shared: do not modify it.
func Builtin(urn string) *Schema {
	for _, s := range builtins() {
		if strings.EqualFold(s.ID, urn) {
			return s
		}
	}
	return nil
}

// BuiltinSchemas returns the built-in schemas: User, Group and Enterprise
// User. The slice is a fresh copy; the schemas are shared and must not be
// modified.
func BuiltinSchemas() []*Schema {
	return slices.Clone(builtins())
}

// Attr returns the attribute with the given name, compared
// case-insensitively (RFC 7643 §2.1), or nil.
func (s *Schema) Attr(name string) *Attribute {
	if s == nil {
		return nil
	}
	return findAttr(s.Attributes, name)
}

// Sub returns the sub-attribute with the given name, compared
// case-insensitively, or nil.
func (a *Attribute) Sub(name string) *Attribute {
	if a == nil {
		return nil
	}
	return findAttr(a.SubAttributes, name)
}

func findAttr(list []*Attribute, name string) *Attribute {
	for _, a := range list {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// schemaJSON and attributeJSON are the wire form of RFC 7643 §7.
type schemaJSON struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Attributes  []*attributeJSON `json:"attributes"`
}

type attributeJSON struct {
	Name            string           `json:"name"`
	Type            string           `json:"type"`
	SubAttributes   []*attributeJSON `json:"subAttributes"`
	MultiValued     bool             `json:"multiValued"`
	Description     string           `json:"description"`
	Required        bool             `json:"required"`
	CanonicalValues []string         `json:"canonicalValues"`
	CaseExact       bool             `json:"caseExact"`
	Mutability      string           `json:"mutability"`
	Returned        string           `json:"returned"`
	Uniqueness      string           `json:"uniqueness"`
	ReferenceTypes  []string         `json:"referenceTypes"`
}

var (
	attrTypes   = []string{TypeString, TypeBoolean, TypeDecimal, TypeInteger, TypeDateTime, TypeReference, TypeBinary, TypeComplex}
	mutabilites = []string{ReadOnly, ReadWrite, Immutable, WriteOnly}
	returneds   = []string{"always", "never", "default", "request"}
	uniquenesss = []string{"none", "server", "global"}
)

// canonical returns the member of allowed equal to v ignoring case, def if v
// is empty, or "" if v is not allowed.
func canonical(v, def string, allowed []string) string {
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a
		}
	}
	return ""
}

// ParseSchema parses one schema definition document (RFC 7643 §7), such as a
// resource of a service provider's /Schemas endpoint or a user-supplied
// schema file. Characteristic values are accepted in any case and
// normalized to RFC spelling (e.g. "STRING" → "string", "readonly" →
// "readOnly"); missing ones get the RFC 7643 §2.2 defaults. The schema needs
// an id; every attribute needs a valid name and type.
func ParseSchema(data []byte) (*Schema, error) {
	var sj schemaJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return nil, fmt.Errorf("scim schema: %w", err)
	}
	return convertSchema(&sj)
}

// ParseSchemas parses a document holding several schema definitions: a JSON
// array of schemas, a ListResponse (RFC 7644 §3.4.2) whose Resources are
// schemas, as a /Schemas endpoint answers, or a single schema.
func ParseSchemas(data []byte) ([]*Schema, error) {
	trimmed := strings.TrimSpace(string(data))
	var raws []json.RawMessage
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("scim schema: %w", err)
		}
	default:
		var list struct {
			Resources []json.RawMessage `json:"Resources"`
			ID        string            `json:"id"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("scim schema: %w", err)
		}
		if list.ID != "" || list.Resources == nil {
			raws = []json.RawMessage{data}
		} else {
			raws = list.Resources
		}
	}
	out := make([]*Schema, 0, len(raws))
	for i, r := range raws {
		s, err := ParseSchema(r)
		if err != nil {
			return nil, fmt.Errorf("schema %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func convertSchema(sj *schemaJSON) (*Schema, error) {
	if sj.ID == "" {
		return nil, errors.New("scim schema: missing id")
	}
	s := &Schema{ID: sj.ID, Name: sj.Name, Description: sj.Description}
	attrs, err := convertAttrs(sj.Attributes, sj.ID+":")
	if err != nil {
		return nil, fmt.Errorf("scim schema %s: %w", sj.ID, err)
	}
	s.Attributes = attrs
	return s, nil
}

func convertAttrs(list []*attributeJSON, prefix string) ([]*Attribute, error) {
	out := make([]*Attribute, 0, len(list))
	for _, aj := range list {
		if aj == nil {
			return nil, fmt.Errorf("null attribute in %s", strings.TrimSuffix(prefix, ":"))
		}
		if err := checkName(aj.Name, 0, false); err != nil {
			return nil, fmt.Errorf("attribute %s%s: invalid name", prefix, aj.Name)
		}
		where := prefix + aj.Name
		a := &Attribute{
			Name:            aj.Name,
			Description:     aj.Description,
			MultiValued:     aj.MultiValued,
			Required:        aj.Required,
			CaseExact:       aj.CaseExact,
			CanonicalValues: aj.CanonicalValues,
			ReferenceTypes:  aj.ReferenceTypes,
		}
		if a.Type = canonical(aj.Type, TypeString, attrTypes); a.Type == "" {
			return nil, fmt.Errorf("attribute %s: unknown type %q", where, aj.Type)
		}
		if a.Mutability = canonical(aj.Mutability, ReadWrite, mutabilites); a.Mutability == "" {
			return nil, fmt.Errorf("attribute %s: unknown mutability %q", where, aj.Mutability)
		}
		if a.Returned = canonical(aj.Returned, "default", returneds); a.Returned == "" {
			return nil, fmt.Errorf("attribute %s: unknown returned %q", where, aj.Returned)
		}
		if a.Uniqueness = canonical(aj.Uniqueness, "none", uniquenesss); a.Uniqueness == "" {
			return nil, fmt.Errorf("attribute %s: unknown uniqueness %q", where, aj.Uniqueness)
		}
		if len(aj.SubAttributes) > 0 {
			if a.Type != TypeComplex {
				return nil, fmt.Errorf("attribute %s: sub-attributes on a %s attribute", where, a.Type)
			}
			subs, err := convertAttrs(aj.SubAttributes, where+".")
			if err != nil {
				return nil, err
			}
			a.SubAttributes = subs
		}
		out = append(out, a)
	}
	return out, nil
}

// attrNames returns the names of the attributes in list, in order.
func attrNames(list []*Attribute, skipReadOnly bool) []string {
	var names []string
	for _, a := range list {
		if skipReadOnly && a.Mutability == ReadOnly {
			continue
		}
		names = append(names, a.Name)
	}
	return names
}

// SchemaCaseExact returns a MatchOptions.CaseExact function that answers from
// the caseExact characteristic of the given schemas. Paths without a URN are
// looked up in the first schema (the core schema); paths with a URN in the
// schema of that id. Unknown paths are not case-exact.
func SchemaCaseExact(core *Schema, extensions ...*Schema) func(path string) bool {
	return func(path string) bool {
		p, err := ParsePath(path, schemaIDs(core, extensions))
		if err != nil {
			return false
		}
		s := core
		if p.URN != "" {
			s = findSchema(p.URN, core, extensions)
		}
		a := s.Attr(p.Attr)
		if a == nil && s == core && s != nil {
			a = findAttr(commonAttributes, p.Attr)
		}
		if p.Sub != "" {
			a = a.Sub(p.Sub)
		}
		return a != nil && a.CaseExact
	}
}

func schemaIDs(core *Schema, extensions []*Schema) []string {
	var ids []string
	if core != nil {
		ids = append(ids, core.ID)
	}
	for _, e := range extensions {
		if e != nil {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func findSchema(urn string, core *Schema, extensions []*Schema) *Schema {
	if core != nil && strings.EqualFold(core.ID, urn) {
		return core
	}
	for _, e := range extensions {
		if e != nil && strings.EqualFold(e.ID, urn) {
			return e
		}
	}
	return nil
}

// commonAttributes are the attributes RFC 7643 §3.1 defines for every
// resource, outside any schema's attribute list: id, externalId and meta.
var commonAttributes = []*Attribute{
	{Name: "id", Type: TypeString, CaseExact: true, Mutability: ReadOnly, Returned: "always", Uniqueness: "server",
		Description: "A unique identifier for a SCIM resource as defined by the service provider."},
	{Name: "externalId", Type: TypeString, CaseExact: true, Mutability: ReadWrite, Returned: "default", Uniqueness: "none",
		Description: "A String that is an identifier for the resource as defined by the provisioning client."},
	{Name: "meta", Type: TypeComplex, Mutability: ReadOnly, Returned: "default", Uniqueness: "none",
		Description: "A complex attribute containing resource metadata.",
		SubAttributes: []*Attribute{
			{Name: "resourceType", Type: TypeString, CaseExact: true, Mutability: ReadOnly, Returned: "default", Uniqueness: "none"},
			{Name: "created", Type: TypeDateTime, Mutability: ReadOnly, Returned: "default", Uniqueness: "none"},
			{Name: "lastModified", Type: TypeDateTime, Mutability: ReadOnly, Returned: "default", Uniqueness: "none"},
			{Name: "location", Type: TypeReference, CaseExact: true, Mutability: ReadOnly, Returned: "default", Uniqueness: "none", ReferenceTypes: []string{"uri"}},
			{Name: "version", Type: TypeString, CaseExact: true, Mutability: ReadOnly, Returned: "default", Uniqueness: "none"},
		}},
}

// ResolveError reports a Path that does not fit the endpoint's schemas.
type ResolveError struct {
	Part       string   // which segment is wrong: "urn", "attr", "sub" or "filter"
	Name       string   // the offending name as written
	Candidates []string // names valid at that point, for "did you mean"
	Msg        string   // lowercase, no trailing period
}

// Error implements error. It appends a "did you mean" hint when Suggest
// finds a candidate close to Name.
func (e *ResolveError) Error() string {
	if s := Suggest(e.Name, e.Candidates); s != "" && s != e.Name {
		return fmt.Sprintf("%s; did you mean %q?", e.Msg, s)
	}
	return e.Msg
}

// Resolve checks a mapping-target Path against the schemas of an endpoint and
// returns the definition of the attribute the path writes. Paths without URN
// (or with core's URN) may also name the common attributes of RFC 7643 §3.1:
// externalId resolves to a built-in definition (caseExact string), id and
// meta are read-only, and "schemas" is rejected (scimsync sets it). core is the
// resource's core schema (nil when unknown: then paths without URN are not
// checked); extensions are the endpoint's extension schemas. A path whose URN
// is neither core's id nor an extension's id is not checked (nil, nil),
// except a URN in the IETF core namespace that is not core's id, which is an
// error.
//
// Resolve rejects, as *ResolveError: unknown attributes and sub-attributes, a
// Filter on an attribute that is not multi-valued, a filter on an unknown
// sub-attribute or with a value of the wrong type, a Sub on an attribute that
// is not complex, and any path into a readOnly attribute (id, meta, groups,
// manager.displayName, ...): the service provider sets those and scimsync
// never sends them.
//
// Which definition it returns:
//   - Sub set: the sub-attribute. Without a Filter on a multi-valued attribute
//     (emails.value) the mapping gives one value per element.
//   - Filter set, no Sub (emails[type eq "work"]): the multi-valued attribute
//     itself; the mapping must give the whole element as a map of
//     sub-attributes, and the filter's values are merged into it.
//   - neither: the attribute.
func Resolve(p Path, core *Schema, extensions []*Schema) (*Attribute, error) {
	s := core
	if p.URN != "" {
		s = findSchema(p.URN, core, extensions)
		if s == nil {
			if core != nil && isCoreURN(p.URN) {
				return nil, &ResolveError{Part: "urn", Name: p.URN, Candidates: schemaIDs(core, extensions),
					Msg: fmt.Sprintf("schema %q is not a schema of this resource type", p.URN)}
			}
			return nil, nil
		}
	}
	if s == nil {
		return nil, nil
	}
	a := s.Attr(p.Attr)
	if a == nil && s == core {
		if strings.EqualFold(p.Attr, "schemas") {
			return nil, &ResolveError{Part: "attr", Name: p.Attr,
				Msg: `attribute "schemas" is set by scimsync from the endpoint's schemas and cannot be mapped`}
		}
		a = findAttr(commonAttributes, p.Attr)
	}
	if a == nil {
		cands := attrNames(s.Attributes, true)
		if s == core {
			cands = append(cands, attrNames(commonAttributes, true)...)
		}
		return nil, &ResolveError{Part: "attr", Name: p.Attr, Candidates: cands,
			Msg: fmt.Sprintf("unknown attribute %q in schema %s", p.Attr, s.ID)}
	}
	if a.Mutability == ReadOnly {
		return nil, &ResolveError{Part: "attr", Name: p.Attr,
			Msg: fmt.Sprintf("attribute %q is read-only and never sent", a.Name)}
	}
	if len(p.Filter) > 0 {
		if !a.MultiValued {
			return nil, &ResolveError{Part: "filter", Name: p.Attr,
				Msg: fmt.Sprintf("attribute %q is not multi-valued; a filter selects an element of a multi-valued attribute", a.Name)}
		}
		for _, eq := range p.Filter {
			if err := checkFilterEq(a, eq); err != nil {
				return nil, err
			}
		}
	}
	if p.Sub == "" {
		return a, nil
	}
	if a.Type != TypeComplex {
		return nil, &ResolveError{Part: "sub", Name: p.Sub,
			Msg: fmt.Sprintf("attribute %q is of type %s and has no sub-attributes", a.Name, a.Type)}
	}
	sub := a.Sub(p.Sub)
	if sub == nil {
		return nil, &ResolveError{Part: "sub", Name: p.Sub, Candidates: attrNames(a.SubAttributes, true),
			Msg: fmt.Sprintf("unknown sub-attribute %q of %q", p.Sub, a.Name)}
	}
	if sub.Mutability == ReadOnly {
		return nil, &ResolveError{Part: "sub", Name: p.Sub,
			Msg: fmt.Sprintf("sub-attribute %q of %q is read-only and never sent", sub.Name, a.Name)}
	}
	return sub, nil
}

// checkFilterEq checks one comparison of a target filter against the
// multi-valued attribute a. A simple multi-valued attribute has only the
// implicit sub-attribute "value".
func checkFilterEq(a *Attribute, eq Eq) error {
	target := a
	if a.Type == TypeComplex {
		target = a.Sub(eq.Attr)
		if target == nil {
			return &ResolveError{Part: "filter", Name: eq.Attr, Candidates: attrNames(a.SubAttributes, false),
				Msg: fmt.Sprintf("unknown sub-attribute %q in filter on %q", eq.Attr, a.Name)}
		}
	} else if !strings.EqualFold(eq.Attr, "value") {
		return &ResolveError{Part: "filter", Name: eq.Attr, Candidates: []string{"value"},
			Msg: fmt.Sprintf("a filter on %s attribute %q can only compare \"value\"", a.Type, a.Name)}
	}
	ok := true
	switch eq.Value.(type) {
	case nil:
	case bool:
		ok = target.Type == TypeBoolean
	case float64:
		ok = target.Type == TypeInteger || target.Type == TypeDecimal
	case string:
		ok = target.Type != TypeBoolean && target.Type != TypeInteger && target.Type != TypeDecimal && target.Type != TypeComplex
	}
	if !ok {
		return &ResolveError{Part: "filter", Name: eq.Attr,
			Msg: fmt.Sprintf("filter compares %s sub-attribute %q of %q with %s", target.Type, target.Name, a.Name, formatValue(eq.Value))}
	}
	return nil
}
