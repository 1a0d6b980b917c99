package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/pretty"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func runMap(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("map", "[PIPE]", stderr)
	entries := fs.StringP("entries", "e", "", "LDIF file of entries or change records (default: the pipe's ldif source file)")
	asJSON := fs.Bool("json", false, "print one JSON object per record instead of text")
	modeName := fs.String("mode", "realtime", "which @realtime/@resync mappings apply: realtime or resync")
	opName := fs.String("op", "", "build resources as for create or update (default: create for adds, update otherwise)")
	currentFile := fs.String("current", "", "a resource as the SCIM service holds it (JSON): show the PATCH that would turn it into each mapped resource")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "scimsync map: name one pipe script")
		return exitUsage
	}
	var mode lang.Mode
	switch *modeName {
	case "realtime":
		mode = lang.Realtime
	case "resync":
		mode = lang.Resync
	default:
		fmt.Fprintf(stderr, "scimsync map: --mode is realtime or resync, not %q\n", *modeName)
		return exitUsage
	}
	if *opName != "" && *opName != "create" && *opName != "update" {
		fmt.Fprintf(stderr, "scimsync map: --op is create or update, not %q\n", *opName)
		return exitUsage
	}
	path := fs.Arg(0)
	if path == "" {
		fmt.Fprintln(stderr, "scimsync map: no pipe script named: running the embedded demo pipe (scripts/demo.pipe)")
	}
	p, opts, ok := loadPipe(path, stderr)
	if !ok {
		return exitFail
	}
	file := *entries
	if file == "" {
		if p.Source.Kind != "ldif" {
			fmt.Fprintf(stderr, "scimsync map: the pipe reads a %s source: name sample entries with --entries FILE.ldif\n", p.Source.Kind)
			return exitUsage
		}
		file = p.Source.File
	} else {
		opts = lang.LoadOptions{} // a file named on the command line is on disk
	}
	var current []byte
	if *currentFile != "" {
		data, err := os.ReadFile(*currentFile)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync map: %v\n", err)
			return exitFail
		}
		if !gjson.ValidBytes(data) || !gjson.ParseBytes(data).IsObject() {
			fmt.Fprintf(stderr, "scimsync map: %s is not a JSON object\n", *currentFile)
			return exitFail
		}
		current = data
		if *opName == "" {
			*opName = "update" // there is a resource to update
		}
	}
	f, err := openFile(opts, file)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync map: %v\n", err)
		return exitFail
	}
	defer f.Close()

	// Read every record first: a group's members may come after it.
	var recs []*ldif.Record
	r := ldif.NewReader(f)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "scimsync map: %s:%v\n", file, err)
			return exitFail
		}
		recs = append(recs, rec)
	}
	all := source.NewDirectory()
	for _, rec := range recs {
		_, _ = all.Apply(rec) // the final state, for references
	}
	m := &mapper{p: p, ev: p.NewEvaluator(), explainEv: p.NewEvaluator(), refs: all.Resolver(p, mode), mode: mode, op: *opName, json: *asJSON, out: stdout, current: current}
	dir := source.NewDirectory()
	var mapped, out, failed int
	for _, rec := range recs {
		ch, err := dir.Apply(rec)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "error: %s:%v\n\n", file, err)
			continue
		}
		switch m.show(rec, ch) {
		case shown:
			mapped++
		case outOfScope:
			out++
		default:
			failed++
		}
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%d records: %d mapped, %d out of scope, %d failed\n", len(recs), mapped, out, failed)
	}
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

type outcome int

const (
	shown outcome = iota
	outOfScope
	failedOutcome
)

// mapper prints what a pipe makes of each change.
type mapper struct {
	p         *lang.Pipe
	ev        *lang.Evaluator
	explainEv *lang.Evaluator
	refs      lang.Resolver
	mode      lang.Mode
	op        string
	json      bool
	out       io.Writer
	current   []byte // --current: show the PATCH against it
}

func (m *mapper) show(rec *ldif.Record, ch *lang.Change) outcome {
	type jsonOut struct {
		Line       int               `json:"line"`
		DN         string            `json:"dn"`
		Change     string            `json:"change"`
		OutOfScope []string          `json:"outOfScope,omitempty"`
		Class      string            `json:"class,omitempty"`
		Endpoint   string            `json:"endpoint,omitempty"`
		Path       string            `json:"path,omitempty"`
		Filter     string            `json:"filter,omitempty"`
		Op         string            `json:"op,omitempty"`
		Resource   json.RawMessage   `json:"resource,omitempty"`
		Patch      []json.RawMessage `json:"patch,omitempty"`
		Error      string            `json:"error,omitempty"`
	}
	j := jsonOut{Line: rec.Line, DN: ch.DN, Change: ch.Type.String()}
	emit := func(o outcome) outcome {
		if m.json {
			b, _ := json.Marshal(j)
			fmt.Fprintf(m.out, "%s\n", b)
		}
		return o
	}
	head := fmt.Sprintf("%s  (line %d, %s)", ch.DN, rec.Line, ch.Type)
	// Password values are sent, never shown: every output below shows
	// them as (withheld), in the text and in --json alike.
	sc := secret.NewScrubber(secret.Withheld, entrySecrets(ch)...)
	res, err := m.ev.Eval(ch, m.mode)
	if err != nil {
		j.Error = sc.String(err.Error())
		if !m.json {
			fmt.Fprintf(m.out, "%s\n  error: %s\n\n", head, j.Error)
		}
		return emit(failedOutcome)
	}
	sc = secret.NewScrubber(secret.Withheld, res.Secrets()...)
	if res.OutOfScope {
		reports, _ := m.explainEv.Explain(ch)
		for _, r := range reports {
			j.OutOfScope = append(j.OutOfScope, r.Class.Name+": "+r.Reason)
		}
		if len(reports) == 0 {
			j.OutOfScope = []string{"no class"}
		}
		if !m.json {
			fmt.Fprintf(m.out, "%s\n  out of scope: %s\n\n", head, strings.Join(j.OutOfScope, "; "))
		}
		return emit(outOfScope)
	}
	j.Class, j.Endpoint, j.Path, j.Filter = res.Class.Name, res.Endpoint.Name, res.Endpoint.Path, sc.String(res.Filter)
	if !m.json {
		fmt.Fprintf(m.out, "%s\n  class     %s\n  endpoint  %s (%s)\n", head, res.Class.Name, res.Endpoint.Name, res.Endpoint.Path)
		if res.Filter != "" {
			fmt.Fprintf(m.out, "  lookup    %s\n", j.Filter)
		}
	}
	if ch.Type == lang.Delete {
		j.Op = "delete"
		if !m.json {
			fmt.Fprintf(m.out, "  delete    the resource the lookup finds\n\n")
		}
		return emit(shown)
	}
	op := lang.Update
	if m.op == "create" || m.op == "" && ch.Type == lang.Add {
		op = lang.Create
	}
	j.Op = map[lang.Op]string{lang.Create: "create", lang.Update: "update"}[op]
	doc, err := res.Resource(op, m.refs)
	if err != nil {
		j.Error = sc.String(err.Error())
		if !m.json {
			fmt.Fprintf(m.out, "  error: %s\n\n", j.Error)
		}
		return emit(failedOutcome)
	}
	j.Resource = scim.Withhold(doc, sc)
	if !m.json {
		fmt.Fprintf(m.out, "  %s:\n%s", j.Op, pretty.Pretty(j.Resource))
	}
	if m.current != nil && op == lang.Update {
		bodies, err := engine.Patch(m.current, doc, res.Managed(op), res.Endpoint, 0)
		if err != nil {
			j.Error = sc.String(err.Error())
			if !m.json {
				fmt.Fprintf(m.out, "  patch error: %s\n\n", j.Error)
			}
			return emit(failedOutcome)
		}
		for i, b := range bodies {
			bodies[i] = scim.Withhold(b, sc)
			j.Patch = append(j.Patch, bodies[i])
		}
		if !m.json {
			switch len(bodies) {
			case 0:
				fmt.Fprintf(m.out, "  patch: no change needed\n")
			case 1:
				fmt.Fprintf(m.out, "  patch:\n%s", pretty.Pretty(bodies[0]))
			default:
				for i, b := range bodies {
					fmt.Fprintf(m.out, "  patch %d of %d:\n%s", i+1, len(bodies), pretty.Pretty(b))
				}
			}
		}
	}
	if !m.json {
		fmt.Fprintln(m.out)
	}
	return emit(shown)
}

// entrySecrets returns the values of the change's password attributes
// (userPassword, unicodePwd, …), which no output shows.
func entrySecrets(ch *lang.Change) []string {
	var out []string
	for _, a := range ch.Entry.Attrs() {
		if lang.IsSecretAttribute(a.Name) {
			out = append(out, a.Values...)
		}
	}
	return out
}
