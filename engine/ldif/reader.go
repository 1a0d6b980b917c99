package ldif

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"unicode/utf8"
)

// bufSize is the size of the Reader's bufio buffer. Physical lines longer
// than this are assembled in a side buffer, up to MaxLineLength.
const bufSize = 64 << 10

// Reader reads LDIF records from an input stream, one record at a time.
//
// Syntax errors are reported as [*Error]. After a syntax error inside a
// record, the next call to Next skips the rest of that record and goes on
// with the following one, so a caller may report bad records and continue.
// Errors from the underlying reader, an unsupported version line and lines
// over [MaxLineLength] are final: Next keeps returning the same error.
type Reader struct {
	br      *bufio.Reader
	maxLine int
	lineNo  int // physical lines read so far

	pend     []byte // look-ahead physical line, valid until the next read
	pendLine int
	havePend bool
	eof      bool
	bomDone  bool
	long     []byte // assembles physical lines longer than the buffer

	buf     []byte // current logical line, unfolded
	segs    []seg  // where each physical line of buf starts
	scratch []byte // base64 decoding buffer

	attrHint int               // attributes in the previous record: Attrs capacity
	names    map[string]string // interned attribute names, at most maxNames

	version int
	started bool  // the first non-blank logical line has been seen
	skip    bool  // skip the rest of the current (bad) record
	err     error // final error
}

// seg records that the physical line numbered line starts at offset off of
// the logical line.
type seg struct{ off, line int }

// NewReader returns a Reader reading LDIF from r. The Reader buffers its
// input; it may read more from r than the records it has returned.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize), maxLine: MaxLineLength}
}

// Version returns 1 if the input started with a "version: 1" line (seen so
// far), else 0.
func (r *Reader) Version() int { return r.version }

// Next returns the next record. At the end of the input it returns nil,
// io.EOF. Syntax errors are returned as [*Error]. The record shares no
// memory with the Reader: it stays valid after later calls.
func (r *Reader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		kind, n, err := r.nextLogical()
		if err != nil {
			return nil, err
		}
		switch kind {
		case kEOF:
			r.skip = false
			return nil, io.EOF
		case kBlank:
			r.skip = false
			continue
		}
		if r.skip {
			continue
		}
		if !r.started {
			r.started = true
			if f, err := r.parseField(); err == nil && eqFold(f.name, "version") {
				if err := r.parseVersion(f); err != nil {
					r.err = err
					return nil, err
				}
				continue
			}
		}
		rec, err := r.parseRecord(n)
		if err != nil {
			return nil, err
		}
		return rec, nil
	}
}

// Kinds of logical lines.
const (
	kEOF = iota
	kBlank
	kLine
)

// nextLogical reads the next logical line into r.buf, unfolding
// continuation lines and skipping comments. It returns the kind of line
// and the number of its first physical line.
func (r *Reader) nextLogical() (kind, line int, err error) {
	for {
		p, n, ok, err := r.readPhys()
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			return kEOF, 0, nil
		}
		if isBlank(p) {
			return kBlank, n, nil
		}
		if p[0] == ' ' {
			return 0, 0, &Error{Line: n, Column: 1, Msg: "continuation line without a preceding line"}
		}
		if len(p) > r.maxLine {
			return 0, 0, r.tooLong(n)
		}
		comment := p[0] == '#'
		if !comment {
			r.buf = append(r.buf[:0], p...)
			r.segs = append(r.segs[:0], seg{0, n})
		}
		for {
			q, m, ok, err := r.readPhys()
			if err != nil {
				return 0, 0, err
			}
			if !ok {
				break
			}
			if len(q) == 0 || q[0] != ' ' || isBlank(q) {
				r.pend, r.pendLine, r.havePend = q, m, true
				break
			}
			if comment {
				// Folded comments are discarded as they are read:
				// only each physical line is limited.
				if len(q) > r.maxLine {
					return 0, 0, r.tooLong(m)
				}
				continue
			}
			if len(r.buf)+len(q)-1 > r.maxLine {
				return 0, 0, r.tooLong(n)
			}
			r.segs = append(r.segs, seg{len(r.buf), m})
			r.buf = append(r.buf, q[1:]...)
		}
		if !comment {
			return kLine, n, nil
		}
	}
}

var bom = []byte("\xef\xbb\xbf")

// readPhys returns the next physical line, without its line ending, and its
// number. ok is false at the end of the input. The line is valid until the
// next read; a line pushed back into r.pend stays valid because nothing is
// read before it is taken again.
func (r *Reader) readPhys() (line []byte, n int, ok bool, err error) {
	if r.havePend {
		r.havePend = false
		return r.pend, r.pendLine, true, nil
	}
	if r.eof {
		return nil, 0, false, nil
	}
	data, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], data...)
		for err == bufio.ErrBufferFull {
			if len(r.long) > r.maxLine+2 { // room for CRLF
				return nil, 0, false, r.tooLong(r.lineNo + 1)
			}
			data, err = r.br.ReadSlice('\n')
			r.long = append(r.long, data...)
		}
		data = r.long
	}
	switch {
	case err == io.EOF:
		r.eof = true
		if len(data) == 0 {
			return nil, 0, false, nil
		}
	case err != nil:
		r.err = err
		return nil, 0, false, err
	}
	r.lineNo++
	if len(data) > 0 && data[len(data)-1] == '\n' {
		data = data[:len(data)-1]
	}
	if len(data) > 0 && data[len(data)-1] == '\r' {
		data = data[:len(data)-1]
	}
	if !r.bomDone {
		r.bomDone = true
		data = bytes.TrimPrefix(data, bom)
	}
	return data, r.lineNo, true, nil
}

// tooLong records and returns the final error for an over-long line.
func (r *Reader) tooLong(line int) error {
	r.err = &Error{Line: line, Msg: fmt.Sprintf("line longer than %d bytes", r.maxLine)}
	return r.err
}

// isBlank reports whether a physical line has only spaces and tabs.
func isBlank(p []byte) bool {
	for _, c := range p {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// errAt returns an *Error located at byte offset off of the logical line.
func (r *Reader) errAt(off int, format string, args ...any) *Error {
	i := len(r.segs) - 1
	for i > 0 && r.segs[i].off > off {
		i--
	}
	s := r.segs[i]
	col := off - s.off + 1
	if i > 0 {
		col++ // the folding space
	}
	return &Error{Line: s.line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Value encodings of a line.
const (
	vPlain  = iota // "name: value"
	vBase64        // "name:: base64"
	vURL           // "name:< url"
)

// field is a parsed "name: value" logical line; its slices point into
// r.buf.
type field struct {
	name   []byte
	kind   int
	val    []byte // the value text after FILL (still encoded for vBase64)
	valOff int    // offset of val in r.buf
}

// parseField splits the logical line in r.buf into name and value.
func (r *Reader) parseField() (field, error) {
	b := r.buf
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return field{}, r.errAt(0, "missing ':' in %q", snippet(b))
	}
	if i == 0 {
		return field{}, r.errAt(0, "missing attribute name before ':'")
	}
	if j := badDesc(b[:i]); j >= 0 {
		return field{}, r.errAt(j, "invalid character %q in attribute description %q", b[j], snippet(b[:i]))
	}
	f := field{name: b[:i], kind: vPlain}
	off := i + 1
	if off < len(b) {
		switch b[off] {
		case ':':
			f.kind = vBase64
			off++
		case '<':
			f.kind = vURL
			off++
		}
	}
	for off < len(b) && b[off] == ' ' {
		off++
	}
	f.val, f.valOff = b[off:], off
	if f.kind != vPlain {
		f.val = bytes.TrimRight(f.val, " ")
	}
	return f, nil
}

// badDesc returns the index of the first byte of d that cannot appear in an
// attribute description, or -1. Descriptions are an attribute type name or
// numeric OID, then ";"-separated options; "_" is tolerated.
func badDesc(d []byte) int {
	for j, c := range d {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case j > 0 && (c == '-' || c == '.' || c == ';' || c == '_'):
		default:
			return j
		}
	}
	return -1
}

// value decodes the value of f.
func (r *Reader) value(f field) (string, error) {
	switch f.kind {
	case vPlain:
		return string(f.val), nil
	case vBase64:
		var err error
		r.scratch, err = decodeBase64(r.scratch[:0], f.val)
		if err != nil {
			off := f.valOff
			if c, ok := err.(base64.CorruptInputError); ok && int(c) < len(f.val) {
				off += int(c)
			}
			return "", r.errAt(off, "invalid base64 value for %q", f.name)
		}
		return string(r.scratch), nil
	default:
		return "", r.errAt(f.valOff, "URL values are not supported (%s:< %s)", f.name, snippet(f.val))
	}
}

// dnValue decodes a DN-valued field (dn, newrdn, newsuperior); base64 DNs
// must be UTF-8.
func (r *Reader) dnValue(f field) (string, error) {
	v, err := r.value(f)
	if err == nil && f.kind == vBase64 && !utf8.ValidString(v) {
		err = r.errAt(f.valOff, "base64 %s value is not valid UTF-8", f.name)
	}
	return v, err
}

// decodeBase64 appends the decoding of src to dst. Padding may be omitted.
func decodeBase64(dst, src []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(src)%4 != 0 && bytes.IndexByte(src, '=') < 0 {
		enc = base64.RawStdEncoding
	}
	n := enc.DecodedLen(len(src))
	if cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	m, err := enc.Decode(dst[:n], src)
	return dst[:m], err
}

// parseVersion handles the "version:" line.
func (r *Reader) parseVersion(f field) error {
	if f.kind != vPlain || string(bytes.TrimRight(f.val, " ")) != "1" {
		return r.errAt(f.valOff, "unsupported LDIF version %q", snippet(f.val))
	}
	r.version = 1
	return nil
}

// States of parseRecord.
const (
	stAfterDN      = iota // dn seen: control, changetype or attribute next
	stControls            // control(s) seen: changetype must follow
	stContent             // content record attributes
	stAdd                 // changetype: add attributes
	stDelete              // changetype: delete: nothing may follow
	stModify              // changetype: modify, between blocks
	stModBlock            // inside a modify block
	stNewRDN              // changetype: modrdn, newrdn expected
	stDeleteOldRDN        // deleteoldrdn expected
	stNewSuperior         // optional newsuperior
	stModrdnDone          // nothing may follow
)

// fail marks the rest of the current record for skipping and returns err.
func (r *Reader) fail(err error) (*Record, error) {
	if r.err == nil {
		r.skip = true
	}
	return nil, err
}

// parseRecord parses the record whose first logical line, numbered start,
// is in r.buf, reading up to its end.
func (r *Reader) parseRecord(start int) (*Record, error) {
	f, err := r.parseField()
	if err != nil {
		return r.fail(err)
	}
	if !eqFold(f.name, "dn") {
		return r.fail(&Error{Line: start, Column: 1, Msg: fmt.Sprintf("missing dn: record starts with %q", snippet(f.name))})
	}
	dn, err := r.dnValue(f)
	if err != nil {
		return r.fail(err)
	}
	rec := &Record{Line: start, DN: dn}
	st := stAfterDN
	last := start
	for {
		kind, n, err := r.nextLogical()
		if err != nil {
			return r.fail(err)
		}
		if kind != kLine {
			break
		}
		last = n
		if isDash(r.buf) {
			switch st {
			case stModBlock:
				st = stModify
				continue
			case stModify:
				return r.fail(r.errAt(0, `unexpected "-" line: no modify block is open`))
			}
		}
		f, err := r.parseField()
		if err != nil {
			return r.fail(err)
		}
		if st == stAfterDN || st == stControls {
			switch {
			case eqFold(f.name, "control"):
				c, err := r.parseControl(f)
				if err != nil {
					return r.fail(err)
				}
				rec.Controls = append(rec.Controls, c)
				st = stControls
				continue
			case eqFold(f.name, "changetype"):
				if rec.ChangeType, err = r.changeType(f); err != nil {
					return r.fail(err)
				}
				switch rec.ChangeType {
				case "add":
					st = stAdd
				case "delete":
					st = stDelete
				case "modify":
					st = stModify
				default:
					st = stNewRDN
				}
				continue
			case st == stControls:
				return r.fail(r.errAt(0, "control: lines must be followed by changetype:, found %q", snippet(f.name)))
			}
			st = stContent
		}
		switch st {
		case stContent, stAdd:
			if eqFold(f.name, "dn") {
				return r.fail(r.errAt(0, "unexpected dn: line inside a record (missing blank line?)"))
			}
			v, err := r.value(f)
			if err != nil {
				return r.fail(err)
			}
			if rec.Attrs == nil && r.attrHint > 0 {
				rec.Attrs = make([]Attr, 0, r.attrHint)
			}
			rec.Attrs = r.addValue(rec.Attrs, f.name, v)
		case stDelete:
			return r.fail(r.errAt(0, "content after changetype: delete"))
		case stModify:
			m, err := r.modLine(f)
			if err != nil {
				return r.fail(err)
			}
			rec.Mods = append(rec.Mods, m)
			st = stModBlock
		case stModBlock:
			m := &rec.Mods[len(rec.Mods)-1]
			if !eqFoldString(m.Attr, f.name) {
				return r.fail(r.errAt(0, "attribute %q does not match %q (missing \"-\" line?)", snippet(f.name), m.Op+": "+m.Attr))
			}
			v, err := r.value(f)
			if err != nil {
				return r.fail(err)
			}
			m.Values = append(m.Values, v)
		case stNewRDN:
			if !eqFold(f.name, "newrdn") {
				return r.fail(r.errAt(0, "expected newrdn: after changetype: modrdn, found %q", snippet(f.name)))
			}
			if rec.NewRDN, err = r.dnValue(f); err != nil {
				return r.fail(err)
			}
			st = stDeleteOldRDN
		case stDeleteOldRDN:
			if !eqFold(f.name, "deleteoldrdn") {
				return r.fail(r.errAt(0, "expected deleteoldrdn: after newrdn:, found %q", snippet(f.name)))
			}
			v := bytes.TrimRight(f.val, " ")
			if f.kind != vPlain || len(v) != 1 || (v[0] != '0' && v[0] != '1') {
				return r.fail(r.errAt(f.valOff, "invalid deleteoldrdn value %q (want 0 or 1)", snippet(f.val)))
			}
			rec.DeleteOldRDN = v[0] == '1'
			st = stNewSuperior
		case stNewSuperior:
			if !eqFold(f.name, "newsuperior") {
				return r.fail(r.errAt(0, "unexpected %q line in modrdn record", snippet(f.name)))
			}
			if rec.NewSuperior, err = r.dnValue(f); err != nil {
				return r.fail(err)
			}
			st = stModrdnDone
		case stModrdnDone:
			return r.fail(r.errAt(0, "unexpected %q line after newsuperior:", snippet(f.name)))
		}
	}
	// The record has ended (blank line or end of input): errors found
	// now need no skipping.
	switch st {
	case stControls:
		return nil, &Error{Line: last, Msg: "control: lines must be followed by changetype:"}
	case stAdd:
		if len(rec.Attrs) == 0 {
			return nil, &Error{Line: last, Msg: "changetype: add record has no attributes"}
		}
	case stNewRDN:
		return nil, &Error{Line: last, Msg: "changetype: modrdn record has no newrdn: line"}
	case stDeleteOldRDN:
		return nil, &Error{Line: last, Msg: "changetype: modrdn record has no deleteoldrdn: line"}
	}
	r.attrHint = min(len(rec.Attrs), 64)
	return rec, nil
}

// changeType parses the value of a "changetype:" line.
func (r *Reader) changeType(f field) (string, error) {
	v := bytes.TrimRight(f.val, " ")
	if f.kind == vPlain {
		for _, ct := range [...]string{"add", "delete", "modify", "modrdn", "moddn"} {
			if eqFold(v, ct) {
				if ct == "moddn" {
					ct = "modrdn"
				}
				return ct, nil
			}
		}
	}
	return "", r.errAt(f.valOff, "unknown changetype %q", snippet(v))
}

// modLine parses the "add:", "delete:", "replace:" or "increment:" line
// opening a modify block.
func (r *Reader) modLine(f field) (Mod, error) {
	var op string
	for _, o := range [...]string{"add", "delete", "replace", "increment"} {
		if eqFold(f.name, o) {
			op = o
		}
	}
	if op == "" {
		return Mod{}, r.errAt(0, "expected add:, delete:, replace: or increment: in modify record, found %q", snippet(f.name))
	}
	if f.kind != vPlain {
		return Mod{}, r.errAt(f.valOff, "%s: takes a plain attribute description", op)
	}
	d := bytes.TrimRight(f.val, " ")
	if len(d) == 0 {
		return Mod{}, r.errAt(f.valOff, "missing attribute description after %s:", op)
	}
	if j := badDesc(d); j >= 0 {
		return Mod{}, r.errAt(f.valOff+j, "invalid character %q in attribute description %q", d[j], snippet(d))
	}
	return Mod{Op: op, Attr: string(d)}, nil
}

// parseControl parses the value of a "control:" line:
//
//	control: OID [SPACE ("true" / "false")] [value-spec]
func (r *Reader) parseControl(f field) (Control, error) {
	if f.kind != vPlain {
		return Control{}, r.errAt(f.valOff, "control: line must not be encoded")
	}
	v, off := f.val, f.valOff
	i := 0
	for i < len(v) && (v[i] == '.' || v[i] >= '0' && v[i] <= '9') {
		i++
	}
	if !validOID(v[:i]) {
		return Control{}, r.errAt(off, "invalid control OID %q", snippet(v))
	}
	c := Control{OID: string(v[:i])}
	j := skipSpaces(v, i)
	if j > i {
		for _, w := range [...]string{"true", "false"} {
			k := j + len(w)
			if k <= len(v) && eqFold(v[j:k], w) && (k == len(v) || v[k] == ' ' || v[k] == ':') {
				c.Criticality = w == "true"
				j = skipSpaces(v, k)
				break
			}
		}
	}
	if j == len(v) {
		return c, nil
	}
	if v[j] != ':' {
		return Control{}, r.errAt(off+j, "unexpected %q in control: line", snippet(v[j:]))
	}
	val := field{name: []byte("control"), kind: vPlain}
	j++
	if j < len(v) && (v[j] == ':' || v[j] == '<') {
		val.kind = vBase64
		if v[j] == '<' {
			val.kind = vURL
		}
		j++
	}
	j = skipSpaces(v, j)
	val.val, val.valOff = v[j:], off+j
	if val.kind != vPlain {
		val.val = bytes.TrimRight(val.val, " ")
	}
	var err error
	c.Value, err = r.value(val)
	return c, err
}

// validOID reports whether b is a numeric OID such as 1.2.840.113556.
func validOID(b []byte) bool {
	if len(b) == 0 || b[0] == '.' || b[len(b)-1] == '.' {
		return false
	}
	return !bytes.Contains(b, []byte(".."))
}

// skipSpaces returns the index of the first non-space byte of b at or after i.
func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// isDash reports whether a logical line is the "-" ending a modify block
// (trailing spaces tolerated).
func isDash(b []byte) bool {
	return len(b) > 0 && b[0] == '-' && isBlank(b[1:])
}

// maxNames bounds the attribute names a Reader interns.
const maxNames = 1024

// addValue appends v to the attribute named name (matched without regard
// to case), adding the attribute if it is new.
func (r *Reader) addValue(attrs []Attr, name []byte, v string) []Attr {
	for i := len(attrs) - 1; i >= 0; i-- {
		if eqFoldString(attrs[i].Name, name) {
			attrs[i].Values = append(attrs[i].Values, v)
			return attrs
		}
	}
	return append(attrs, Attr{Name: r.intern(name), Values: []string{v}})
}

// intern returns name as a string, sharing one copy between records.
func (r *Reader) intern(name []byte) string {
	if s, ok := r.names[string(name)]; ok {
		return s
	}
	s := string(name)
	if r.names == nil {
		r.names = make(map[string]string)
	}
	if len(r.names) < maxNames {
		r.names[s] = s
	}
	return s
}

// eqFold reports whether b equals the lower-case ASCII keyword kw, ignoring
// ASCII case.
func eqFold(b []byte, kw string) bool {
	return eqFoldString(kw, b)
}

// eqFoldString reports whether s and b are equal, ignoring ASCII case.
func eqFoldString(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(s[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// snippet returns b as a string, shortened for error messages.
func snippet(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
