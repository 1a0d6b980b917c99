package lang

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
)

// Refs is what ref(…) gives: DNs that refer to entries, and the endpoints
// whose resources those entries became. Building the resource turns each DN
// into the SCIM id of that resource, through a Resolver.
type Refs struct {
	DNs       []string
	Endpoints []*Endpoint
}

var refsType = reflect.TypeOf((*Refs)(nil))

// refFunction is ref(dns, Endpoint…): group members, managers and other
// DN-valued attributes as references to SCIM resources. It is part of the
// language rather than the builtins: it names endpoints.
var refFunction = expr.Function("ref", func(args ...any) (any, error) {
	r := &Refs{}
	switch v := args[0].(type) {
	case nil:
	case string:
		if v != "" {
			r.DNs = []string{v}
		}
	case []string:
		r.DNs = v
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("ref: want DNs as strings, found %T", x)
			}
			r.DNs = append(r.DNs, s)
		}
	default:
		return nil, fmt.Errorf("ref: want a DN or a list of DNs, got %T", v)
	}
	for _, e := range args[1:] {
		ep, ok := e.(*Endpoint)
		if !ok || ep == nil {
			return nil, fmt.Errorf("ref: want endpoint names after the DNs")
		}
		r.Endpoints = append(r.Endpoints, ep)
	}
	if len(r.Endpoints) == 0 {
		return nil, fmt.Errorf("ref: name the endpoints the DNs refer to, e.g. ref(member, Users, Groups)")
	}
	return r, nil
}, new(func(any, ...*Endpoint) *Refs))

// Ref is a resolved reference: the SCIM id of the resource an entry became,
// and its resource type ("User", "Group").
type Ref struct {
	ID   string
	Type string
}

// Resolver turns the DN of a referenced entry into the SCIM resource it
// became at one of endpoints. ok is false when the entry is out of scope or
// unknown: the reference is then left out. An error fails the change (to be
// retried), e.g. when the member is not in SCIM yet.
type Resolver interface {
	Resolve(dn string, endpoints []*Endpoint) (ref Ref, ok bool, err error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(dn string, endpoints []*Endpoint) (Ref, bool, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(dn string, endpoints []*Endpoint) (Ref, bool, error) {
	return f(dn, endpoints)
}
