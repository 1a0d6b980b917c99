// Package source reads the changes of a directory as a stream of Events,
// each carrying a lang.Change with the entry as the directory holds it now,
// a stable identity and a checkpoint Position.
//
// One interface, Source, and one file per kind:
//   - changelog.go: the draft-good-ldap-changelog cn=changelog (389-ds retro
//     changelog, PingDirectory, DSEE, ForgeRock DS), read by changeNumber,
//     with a persistent search to wake up where the server has one, and
//     ErrTrimmed when the changelog no longer holds the changes after the
//     checkpoint (a resync is needed; nothing is skipped silently);
//   - syncrepl.go: RFC 4533 refreshAndPersist (OpenLDAP syncprov, 389-ds
//     Content Sync); the cookie is the checkpoint, and the present phase
//     becomes an EventPresentSet;
//   - dirsync.go: Active Directory DirSync, objectGUID identities, tombstones
//     as deletes;
//   - ldiffile.go: an LDIF file (RFC 2849) as a change stream: content
//     records as upserts and change records as changes, applied to an
//     in-memory Directory (ldif.go) so that each change carries the entry as
//     it stands after it.
//
// Open picks the kind from the script's source block; StartPoint gives the
// Position for `scimsync set-startpoint`. conn.go dials (ldap://, ldaps://,
// StartTLS, failover over the URLs, reconnect with backoff); fetch.go's
// Reader reads entries by DN or filter for the engine (references) and the
// REPL. Values read from the directory are never logged.
package source
