package source

import (
	"context"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestEntryByIDOn389: 389-ds names cn=changelog its defaultNamingContext
// once the Retro Changelog is on; reading an entry by identity (how a
// parked entry is retried) must search the entries' naming context, or
// the entry reads as gone and its retry deletes the resource.
func TestEntryByIDOn389(t *testing.T) {
	srv := ldaptest.DS389(t)
	c := srv.Dial(t)
	sub := srv.Subtree(t, c, ldaptest.Unique("nc"))
	dn := sub.AddUser(t, c, ldaptest.Unique("nc"), nil)
	cfg := sub.Source("changelog")
	cfg.Identity = "nsUniqueId"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rd, err := OpenReader(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	e, err := rd.Entry(ctx, dn)
	if err != nil || e == nil {
		t.Fatalf("Entry: %v, %v", e, err)
	}
	id, _ := entryIdentity(e, "nsUniqueId")
	got, err := rd.EntryByID(ctx, id)
	if err != nil || got == nil || NormalizeDN(got.DN) != NormalizeDN(dn) {
		t.Fatalf("EntryByID(%s) = %v, %v; want %s", id, got, err, dn)
	}
}
