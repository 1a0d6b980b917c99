package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
)

// scimService is the REPL's way to the SCIM service of its current pipe:
// :get finds a resource as engine.Destination does, :patch runs
// Destination.ApplyKnown with DryRun set (so that the requests shown are
// the ones a sync would send, lookups and all), and :apply runs it for
// real. The client is made on first use, and again when :load brings other
// scim settings.
type scimService struct {
	pipe   func() *lang.Pipe
	client *scim.Client
	cfg    scim.Config
}

var _ repl.Service = (*scimService)(nil)

func (s *scimService) dest(p *lang.Pipe) (*engine.Destination, error) {
	if p == nil {
		return nil, errors.New("no pipe loaded")
	}
	if p.SCIM.URL == "" {
		return nil, errors.New("the pipe's scim block names no url")
	}
	if s.client == nil || !reflect.DeepEqual(s.cfg, p.SCIM) {
		c, err := scim.NewClient(p.SCIM, scim.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			return nil, err
		}
		s.client, s.cfg = c, p.SCIM
	}
	return &engine.Destination{Client: s.client, Pipe: p}, nil
}

// Get finds the resource by the endpoint's lookup filter, as a sync does
// for an entry it has no id for.
func (s *scimService) Get(res *lang.Result) (string, []byte, string, error) {
	d, err := s.dest(s.pipe())
	if err != nil {
		return "", nil, "", err
	}
	if res.Filter == "" {
		return "", nil, "", fmt.Errorf("endpoint %s has no lookup, or this change lacks what it is built from: the REPL cannot find the resource", res.Endpoint.Name)
	}
	how := "by the lookup " + res.Filter
	id, current, err := d.FindAny(context.Background(), res.Endpoint, []string{res.Filter})
	return id, current, how, err
}

// Plan runs the destination with DryRun set: every write request is
// collected instead of sent, references to entries SCIM lacks read
// "(id of DN)".
func (s *scimService) Plan(res *lang.Result, entry func(string) *lang.Entry) ([]repl.Request, error) {
	d, err := s.dest(s.pipe())
	if err != nil {
		return nil, err
	}
	var reqs []repl.Request
	d.DryRun = func(method, path string, body []byte) {
		reqs = append(reqs, repl.Request{Method: method, Path: path, Body: append([]byte(nil), body...)})
	}
	refs := &engine.RefResolver{Pipe: d.Pipe, Dest: d, Mode: res.Mode, Placeholder: true, Entry: entryFunc(entry)}
	if _, err := d.ApplyKnown(context.Background(), res, engine.Known{}, refs); err != nil {
		return nil, err
	}
	return reqs, nil
}

// Apply applies the result as a sync would.
func (s *scimService) Apply(res *lang.Result, entry func(string) *lang.Entry) (string, error) {
	d, err := s.dest(s.pipe())
	if err != nil {
		return "", err
	}
	refs := &engine.RefResolver{Pipe: d.Pipe, Dest: d, Mode: res.Mode, Entry: entryFunc(entry)}
	a, err := d.ApplyKnown(context.Background(), res, engine.Known{}, refs)
	if err != nil {
		return "", err
	}
	what := string(a.Outcome)
	if a.ID != "" {
		what += " " + strings.TrimRight(res.Endpoint.Path, "/") + "/" + a.ID
	}
	return fmt.Sprintf("%s (%s sent)", what, plural(a.Requests, "request")), nil
}

func entryFunc(entry func(string) *lang.Entry) func(string) (*lang.Entry, error) {
	return func(dn string) (*lang.Entry, error) { return entry(dn), nil }
}
