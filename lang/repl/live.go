package repl

import (
	"fmt"
	"strings"

	"github.com/tidwall/pretty"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// Service is the pipe's SCIM service, for :get, :patch without a file and
// :apply. The REPL only reads through it, except on :apply after the user
// said yes. cmd/scimsync implements it with engine.Destination, so that
// what :patch shows is exactly what `run` would send.
type Service interface {
	// Get finds the result's current resource at its endpoint, as a sync
	// finds it; current is nil when there is none. how says how it was
	// found ("by the lookup userName eq \"x\"").
	Get(res *lang.Result) (id string, current []byte, how string, err error)
	// Plan returns the write requests a sync would send for the result,
	// in order, and sends none (its lookups do go to the service). entry
	// reads the sample entries, for references.
	Plan(res *lang.Result, entry func(dn string) *lang.Entry) ([]Request, error)
	// Apply sends them, as a sync would, and says what it did.
	Apply(res *lang.Result, entry func(dn string) *lang.Entry) (string, error)
}

// Request is one write request: method, path and JSON body.
type Request struct {
	Method, Path string
	Body         []byte
}

// errNoSCIM is what :get, :patch and :apply say without a service.
const errNoSCIM = "no SCIM service: `scimsync repl PIPE` reaches the one the pipe names (the embedded demo never does)"

// entryByDN reads a sample entry for references.
func (r *REPL) entryByDN(dn string) *lang.Entry {
	if r.dir == nil {
		return nil
	}
	return r.dir.Get(dn)
}

// showJSON writes a SCIM document for people to read: indented, every
// password value withheld.
func (r *REPL) showJSON(doc []byte) {
	r.out.Write(pretty.Pretty(scim.Withhold(doc, secret.Scrubber{})))
}

func (r *REPL) cmdGet(arg string) error {
	if arg != "" {
		return r.failf(":get takes no argument: it reads the current entry's resource")
	}
	if r.opts.Service == nil {
		return r.failf(errNoSCIM)
	}
	res, err := r.result()
	if err != nil {
		return err
	}
	id, current, how, err := r.opts.Service.Get(res)
	if err != nil {
		return r.failf("%v", err)
	}
	if current == nil {
		fmt.Fprintf(r.out, "%s has no resource for this entry (%s): a sync would create it\n", res.Endpoint.Path, how)
		return nil
	}
	fmt.Fprintf(r.out, "%s/%s, found %s:\n", res.Endpoint.Path, id, how)
	r.showJSON(current)
	return nil
}

// cmdLivePatch is :patch without a file: the requests a sync would send
// for the current entry, against the resource the service holds now.
func (r *REPL) cmdLivePatch() error {
	if r.opts.Service == nil {
		return r.failf("no SCIM service to read the current resource from: name a file holding it, :patch FILE.json (`scimsync repl PIPE` reaches the pipe's service)")
	}
	res, err := r.result()
	if err != nil {
		return err
	}
	reqs, err := r.opts.Service.Plan(res, r.entryByDN)
	if err != nil {
		return r.failf("%v", err)
	}
	r.showRequests(reqs, "nothing is sent")
	return nil
}

func (r *REPL) showRequests(reqs []Request, note string) {
	if len(reqs) == 0 {
		fmt.Fprintln(r.out, "no change needed: the service's resource already holds what the class manages")
		return
	}
	fmt.Fprintf(r.out, "what a sync would send (%s):\n", note)
	for _, q := range reqs {
		fmt.Fprintf(r.out, "%s %s\n", q.Method, q.Path)
		if len(q.Body) > 0 {
			r.showJSON(q.Body)
		}
	}
}

func (r *REPL) cmdApply(arg string) error {
	if arg != "" {
		return r.failf(":apply takes no argument: it applies the current entry")
	}
	if r.opts.Service == nil {
		return r.failf(errNoSCIM)
	}
	if r.opts.Confirm == nil {
		return r.failf("not applied: :apply writes to the SCIM service and asks first, and standard input is not a terminal")
	}
	res, err := r.result()
	if err != nil {
		return err
	}
	reqs, err := r.opts.Service.Plan(res, r.entryByDN)
	if err != nil {
		return r.failf("%v", err)
	}
	r.showRequests(reqs, "nothing is sent until you say yes")
	if len(reqs) == 0 {
		return nil
	}
	q := fmt.Sprintf("send %s to %s? [y/N] ", plural(len(reqs), "request", "requests"), r.p.SCIM.URL)
	if !r.opts.Confirm(q) {
		fmt.Fprintln(r.out, "not applied")
		return nil
	}
	// The service may have changed since the plan: Apply looks again,
	// as a sync does.
	what, err := r.opts.Service.Apply(res, r.entryByDN)
	if err != nil {
		return r.failf("%v", err)
	}
	fmt.Fprintln(r.out, strings.TrimSpace(what))
	return nil
}
