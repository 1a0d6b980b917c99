// Package source turns what directories report into lang.Change values.
//
// This file set starts with the LDIF source: an LDIF file read as a stream
// of changes, content records as upserts and change records (RFC 2849
// changetype add, modify, delete, modrdn) as changes, applied to an
// in-memory copy of the directory so that each change carries the current
// entry, as the LDAP sources fetch it from the server.
package source
