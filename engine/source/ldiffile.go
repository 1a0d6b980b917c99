package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/lang"
)

// LDIFFile reads an LDIF file (RFC 2849) as a change stream: content
// records are upserts (an add, or a modify of an entry seen before), change
// records are changes, each applied to an in-memory Directory so the change
// carries the entry as it stands after it.
//
// Ordering: file order. Position is "ldif:N", N the number of records
// read; resuming from it reads the first N records again into the Directory
// without reporting them, then reports record N+1 on. Identity is always ""
// (an LDIF file has no stable identity): the caller matches by DN. At the
// end of the file Next returns io.EOF.
type LDIFFile struct {
	f    *os.File
	r    *ldif.Reader
	dir  *Directory
	n    int // records read
	path string
}

var _ Source = (*LDIFFile)(nil)

// OpenLDIFFile opens path positioned after start.
func OpenLDIFFile(path, start string) (*LDIFFile, error) {
	rest, err := splitPosition("ldif", start)
	if err != nil {
		return nil, err
	}
	skip := 0
	if rest != "" {
		if skip, err = strconv.Atoi(rest); err != nil || skip < 0 {
			return nil, fmt.Errorf("%w: %q is not a record number", ErrBadPosition, start)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s := &LDIFFile{f: f, r: ldif.NewReader(bufio.NewReaderSize(f, 64<<10)), dir: NewDirectory(), path: path}
	for s.n < skip {
		if _, err := s.read(); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %s has %d records, the checkpoint is after record %d", ErrBadPosition, path, s.n, skip)
			}
			return nil, err
		}
	}
	return s, nil
}

// Directory returns the in-memory directory built so far (for references
// between entries, as Directory.Resolver gives them).
func (s *LDIFFile) Directory() *Directory { return s.dir }

func (s *LDIFFile) read() (*lang.Change, error) {
	rec, err := s.r.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	ch, err := s.dir.Apply(rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	s.n++
	return ch, nil
}

// Next returns the next record's change, or io.EOF at the end of the file.
func (s *LDIFFile) Next(ctx context.Context) (*Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.f == nil {
		return nil, ErrClosed
	}
	ch, err := s.read()
	if err != nil {
		return nil, err
	}
	return &Event{Kind: EventChange, Change: ch, Position: "ldif:" + strconv.Itoa(s.n)}, nil
}

// Close closes the file.
func (s *LDIFFile) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// ldifStartPoint answers set-startpoint for an LDIF file.
func ldifStartPoint(path string, spec StartSpec) (string, error) {
	switch spec.Kind {
	case StartChangeNumber:
		if spec.ChangeNumber < 1 {
			return "", fmt.Errorf("--change-number must be 1 or more")
		}
		return "ldif:" + strconv.FormatInt(spec.ChangeNumber-1, 10), nil
	case StartEnd:
		s, err := OpenLDIFFile(path, "")
		if err != nil {
			return "", err
		}
		defer s.Close()
		for {
			if _, err := s.read(); err != nil {
				if errors.Is(err, io.EOF) {
					return "ldif:" + strconv.Itoa(s.n), nil
				}
				return "", err
			}
		}
	}
	return "", unsupported("ldif", spec)
}
