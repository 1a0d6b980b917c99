package engine

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/lang"
)

// TestResyncMembersNeedNoLookups (issue 15 #2): group members that this
// resync has just created or found resolve from what it recorded: no
// per-member lookup and no per-member directory read. Into an empty
// service, 40 users and 3 groups take one lookup each and one create each
// (in Bulk requests or not: each operation counts);
// a second resync where nothing differs, one lookup each. The one
// exception is the nested group "inner", which "half" names before it is
// synced: it is read and looked up as a member (two more lookups the first
// time: it is not there yet, and "half" is tried again in a later pass;
// one the second time; fewer when a worker has synced "inner" by then),
// and the member DN outside every class is read.
func TestResyncMembersNeedNoLookups(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	prefix := scimtest.Unique("rr")
	const users = 40
	dir := directory(t, prefix, users)
	for round, want := range []struct{ gets, writes int }{{users + 3 + 2, users + 3}, {users + 3 + 1, 0}} {
		before := lastSeq(t, f.env, f.ua)
		reads := 0
		st, failed := f.resync(dir, nil, func(_ *Destination, o *ResyncOptions) {
			rr := o.Refs.(*RefResolver)
			read := rr.Entry
			rr.Entry = func(dn string) (*lang.Entry, error) { reads++; return read(dn) }
		})
		if len(failed) > 0 || st.Failed.Load() != 0 {
			t.Fatalf("round %d: failed %v", round, failed)
		}
		gets, writes := 0, 0
		for _, q := range f.env.Requests(t, f.ua) {
			switch {
			case q.Seq <= before:
			case q.Path == "/ServiceProviderConfig": // the Bulk plan's, no lookup
			case q.Method == "GET" || strings.HasSuffix(q.Path, "/.search"):
				gets++
			default:
				writes += writeOps(q)
			}
		}
		if gets < users+3 || gets > want.gets || writes != want.writes {
			t.Errorf("round %d: %d lookups and %d writes for %d entries, want %d to %d lookups and %d writes", round, gets, writes, users+3, users+3, want.gets, want.writes)
		}
		if reads > 2 {
			t.Errorf("round %d: %d member entries read from the directory, want at most 2 (the nested group, the DN in no class)", round, reads)
		}
	}
}
