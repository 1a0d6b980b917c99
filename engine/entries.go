package engine

import (
	"context"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// DirectoryEntries are the entries of an in-memory directory (an LDIF
// source), all of them or those of DNs.
type DirectoryEntries struct {
	Dir *source.Directory
	DNs []string // when set, only these entries (resync --dn-file)
}

// Count implements Entries.
func (d *DirectoryEntries) Count() int64 {
	if d.DNs != nil {
		return int64(len(d.DNs))
	}
	return int64(d.Dir.Len())
}

// Each implements Entries. A listed DN the directory lacks is skipped.
func (d *DirectoryEntries) Each(ctx context.Context, fn func(*lang.Entry) error) error {
	if d.DNs != nil {
		for _, dn := range d.DNs {
			if e := d.Dir.Get(dn); e != nil {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, e := range d.Dir.Entries() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Get implements Entries.
func (d *DirectoryEntries) Get(dn string) (*lang.Entry, error) { return d.Dir.Get(dn), nil }
