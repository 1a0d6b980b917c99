package source

import (
	"errors"
	"io"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/lang"
)

// ReadLDIF reads every record of an LDIF stream and applies them in order
// to a new Directory. It returns the change each record is, each carrying
// the entry as it stood after that record, and the directory in its final
// state (for references to entries that come later in the file, as a
// group's members may). The first unreadable or inapplicable record stops
// it, with an error naming its line.
func ReadLDIF(r io.Reader) ([]*lang.Change, *Directory, error) {
	d := NewDirectory()
	var out []*lang.Change
	lr := ldif.NewReader(r)
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return out, d, nil
		}
		if err != nil {
			return nil, nil, err
		}
		ch, err := d.Apply(rec)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, ch)
	}
}
