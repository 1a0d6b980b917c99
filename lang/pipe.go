package lang

import (
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
)

// Pipe is a compiled pipe script: everything one sync pipe needs, with every
// expression compiled. It is immutable after Load and safe for concurrent
// use; each goroutine evaluates changes through its own Evaluator.
type Pipe struct {
	Name   string
	Source SourceConfig
	SCIM   scim.Config
	Query  string // how existing resources are looked up: "get" (GET ?filter=) or "post" (POST /.search)
	Update string // how they are changed: "patch" (RFC 7644 §3.5.2, the default) or "put"
	// MaxPatchOps bounds the operations of one PATCH request (0: the
	// default, 1000); larger changes, such as many members at once, are sent
	// in several requests.
	MaxPatchOps int
	// PatchFilters is how a PATCH reaches elements of a multi-valued
	// attribute: "filter" or "" (paths with a value filter, such as remove
	// emails[type eq "other"]; when the service refuses one, the destination
	// falls back to "replace" for good) or "replace" (the whole attribute is
	// replaced with the desired elements, for services known to refuse
	// value filters).
	PatchFilters string
	// SkipPasswords (scim { passwords = "skip" }) leaves every password
	// mapping out: for a service that refuses password writes, or that
	// must keep its own.
	SkipPasswords bool
	// NoList (scim { list = false }) makes resync look every entry up at
	// the service instead of listing the endpoints first, as --no-list
	// does; the zero value lists.
	NoList bool
	// MaxDeletes, MaxDeletesPercent and DeleteWindow are the scim block's
	// mass-delete guard settings (0: the engine's defaults): the deletes
	// and deactivations one command, or run within DeleteWindow, may send,
	// as a count and as a share of the resources the pipe manages.
	MaxDeletes        int
	MaxDeletesPercent int
	DeleteWindow      time.Duration
	// Bulk, BulkMaxOperations and BulkMaxPayload are the scim block's RFC
	// 7644 §3.7 Bulk settings (bulksettings.go): whether resync sends its
	// creates in BulkRequests ("auto", what Load sets when the script says
	// nothing: when the service advertises Bulk; "on": even when it does
	// not say so; "off", or "" in a Pipe not made by Load: no), and the
	// limits of one request (0: what the service advertises).
	Bulk              string
	BulkMaxOperations int
	BulkMaxPayload    int
	Endpoints         []*Endpoint
	Classes           []*Class

	src      *Source
	warnings *Diagnostics   // nil when the load found nothing to warn about
	attrs    []string       // lower-case names of the attributes expressions read
	env      map[string]any // the variables every evaluation starts from

	// What CompileExpr needs to compile more expressions later.
	known    map[string]string
	spelled  []string
	envTypes map[string]any
}

// SourceConfig is the source block: where changes come from.
type SourceConfig struct {
	Kind string // "ldif", "changelog", "syncrepl" or "dirsync"
	Pos  Pos

	File string // ldif: the file, resolved against the script's folder

	URLs         []string // ldap:// or ldaps:// servers, tried in order
	BindDN       string
	Password     secret.Secret
	Base         []string // base DNs the source reads; classes narrow them
	CAFile       string
	StartTLS     bool
	Insecure     bool
	Timeout      time.Duration
	PollInterval time.Duration // changelog polling
	PageSize     int
	Identity     string   // attribute holding a stable entry identity (entryUUID, nsUniqueId, objectGUID)
	Attributes   []string // attribute names the script declares beyond the known vocabulary
	// PasswordKey (passwordKey) is the key that would decrypt
	// PingDirectory's ds-changelog-encrypted-password; see
	// engine/source/password.go for why it cannot be used yet.
	PasswordKey secret.Secret
}

// Endpoint is a SCIM endpoint such as /Users: its path, schemas, and how an
// existing resource is found there.
type Endpoint struct {
	Name    string
	Path    string
	Schemas []string // core schema first, then extensions
	Type    string   // resource type name used in references ("User", "Group")
	Adopt   bool     // on 409 on create, look the resource up and update it
	Pos     Pos

	lookup *expression
	core   *scim.Schema
	exts   []*scim.Schema
}

// CoreSchema returns the built-in definition of the endpoint's core schema,
// or nil when scimsync does not know it.
func (e *Endpoint) CoreSchema() *scim.Schema { return e.core }

// ExtensionSchemas returns the built-in definitions of the endpoint's
// extension schemas that scimsync knows.
func (e *Endpoint) ExtensionSchemas() []*scim.Schema { return e.exts }

// HasLookup reports whether the endpoint has a lookup expression.
func (e *Endpoint) HasLookup() bool { return e.lookup != nil }

// Class is a sync class: which entries it takes, which operations it
// synchronizes, the endpoint they go to, and the attribute mappings.
type Class struct {
	Name       string
	Pos        Pos
	Base       []string // as written
	Operations []string // of "create", "modify", "delete"
	OnDelete   string   // "delete" (the default) or "deactivate": set active to false instead
	OnLeave    string   // when an entry stops matching the class: "delete", "deactivate" or "keep" (default: OnDelete)
	Mappings   []*Mapping

	base     []*ldap.DN
	ops      uint8 // opCreate | opModify | opDelete
	when     *expression
	endpoint *Endpoint   // static endpoint, or nil when chosen by an expression
	choose   *expression // endpoint expression
	managed  [4][]scim.Path
	shape    *shapeNode
	groups   int        // element groups: the distinct attribute[filter] of filtered targets
	reads    [2]readSet // per Mode: what a modify's evaluation may read (see Reads)
}

const (
	opCreate uint8 = 1 << iota
	opModify
	opDelete
)

// HasRefs reports whether a mapping of the class is ref(…): its resources
// refer to others, so a bulk load sends them after those.
func (c *Class) HasRefs() bool {
	for _, m := range c.Mappings {
		if m.isRef {
			return true
		}
	}
	return false
}

// Endpoints returns the endpoints the class can send to.
func (c *Class) Endpoints(p *Pipe) []*Endpoint {
	if c.endpoint != nil {
		return []*Endpoint{c.endpoint}
	}
	return p.Endpoints
}

// Mapping is one `target = expression` line of a class's map block.
type Mapping struct {
	Target scim.Path
	Pos    Pos
	Usage  Usage

	prog  *expression
	attr  *scim.Attribute // the target's definition; nil when the schema is unknown
	top   *scim.Attribute // the top-level attribute, for filtered paths
	path  string          // sjson path for a plain target
	group int             // element group for a filtered target, else -1
	isRef bool            // the expression is ref(…)
	isKey bool            // the value sub-attribute of its group: no value, no element
	// password: the target is the User's clear-text password, which never
	// takes a stored hash (see isHashedPassword).
	password bool
	eps      []*Endpoint // the endpoints whose schemas have the target; nil = all
}

// appliesTo reports whether the mapping applies to resources of endpoint e.
func (m *Mapping) appliesTo(e *Endpoint) bool {
	if m.eps == nil {
		return true
	}
	for _, x := range m.eps {
		if x == e {
			return true
		}
	}
	return false
}

// Usage says when a mapping is sent, like PingDataSync's attribute-usage:
// on create and/or update, in real-time sync and/or resync.
type Usage uint8

// The usage bits. A mapping without annotations has all four.
const (
	CreateRealtime Usage = 1 << iota
	CreateResync
	UpdateRealtime
	UpdateResync
	AllUsage = CreateRealtime | CreateResync | UpdateRealtime | UpdateResync
)

// Op is what the engine does with a mapped resource.
type Op uint8

// The operations a resource is built for.
const (
	Create Op = iota
	Update
)

// Mode is how the engine runs.
type Mode uint8

// The modes.
const (
	Realtime Mode = iota
	Resync
)

// bit returns the usage bit for an operation in a mode.
func bit(op Op, mode Mode) Usage {
	return Usage(1) << (uint(op)*2 + uint(mode))
}

// Has reports whether u includes sending on op in mode.
func (u Usage) Has(op Op, mode Mode) bool { return u&bit(op, mode) != 0 }

// expression is a compiled per-change expression and where it came from.
type expression struct {
	prog *vm.Program
	text exprText
	pos  Pos
	what string // what it computes, for runtime errors: "when", "lookup", "userName"
	// secret: the expression reads a password attribute, so its runtime
	// errors, which may quote values, are not shown.
	secret bool
	reads  readSet // what of a change it reads, for Class.Reads
}

// Warnings returns what the load found that does not stop the pipe but will
// fail some changes (a password mapping that can only give hashed values),
// or nil. Render it where load errors are rendered: `check` and start-up.
func (p *Pipe) Warnings() *Diagnostics { return p.warnings }

// Script returns the script this pipe was loaded from.
func (p *Pipe) Script() *Source { return p.src }

// Class returns the class with that name, or nil.
func (p *Pipe) Class(name string) *Class {
	for _, c := range p.Classes {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Endpoint returns the endpoint with that name, or nil.
func (p *Pipe) Endpoint(name string) *Endpoint {
	for _, e := range p.Endpoints {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Attributes returns the names (lower case, sorted) of the LDAP attributes
// the pipe's expressions read: what a reader of the directory must request
// beyond "*" (operational attributes such as entryUUID or nsAccountLock).
func (p *Pipe) Attributes() []string { return append([]string(nil), p.attrs...) }

// Managed returns the SCIM paths the class manages when building op in
// mode: the targets of its mappings with that usage. An update removes a
// managed attribute whose mapping gives nothing, and never touches the rest.
func (c *Class) Managed(op Op, mode Mode) []scim.Path {
	return c.managed[uint(op)*2+uint(mode)]
}

// Managed returns the SCIM paths the result's class manages at its
// endpoint when building op: see Class.Managed. When the class chooses its
// endpoint per entry, targets the endpoint's schemas lack are left out.
//
// An element of a filtered path that Resource(op) leaves out — its mapped
// values are all gone, or its value sub-attribute is — is managed whole:
// emails[type eq "work"] instead of emails[type eq "work"].value, so that
// an update removes the element rather than only its value (a PUT body
// built sub-attribute by sub-attribute would keep {"type":"work"}).
func (r *Result) Managed(op Op) []scim.Path {
	cl := r.Class
	if cl == nil {
		return nil
	}
	if cl.endpoint != nil && r.exclude == nil && cl.groups == 0 {
		return cl.Managed(op, r.Mode)
	}
	var gone []bool
	if cl.groups > 0 && !r.OutOfScope {
		if !r.w.ready || r.w.op != op {
			// Resource(op) was not built yet: decide without resolving
			// references (each DN counts as a value). A value that fails
			// to convert leaves the elements managed part by part, as
			// Resource fails the change anyway.
			_ = r.prepare(op, nil)
		}
		if r.w.ready && r.w.op == op {
			gone = make([]bool, cl.groups)
			for g := range gone {
				gone[g] = !r.w.elem[g]
			}
		}
	}
	out := make([]scim.Path, 0, len(cl.Mappings)) // at most one path per mapping: one allocation per change
	for _, m := range cl.Mappings {
		if !m.Usage.Has(op, r.Mode) || !m.appliesTo(r.Endpoint) || r.excluded(m) {
			continue
		}
		if m.group >= 0 && gone != nil && gone[m.group] {
			el := scim.Path{URN: m.Target.URN, Attr: m.Target.Attr, Filter: m.Target.Filter}
			if !containsPath(out, el) {
				out = append(out, el)
			}
			continue
		}
		out = append(out, m.Target)
	}
	return out
}

// containsPath reports whether paths holds p (compared as written).
func containsPath(paths []scim.Path, p scim.Path) bool {
	s := p.String()
	for _, q := range paths {
		if len(q.Filter) > 0 && q.Sub == "" && q.String() == s {
			return true
		}
	}
	return false
}
