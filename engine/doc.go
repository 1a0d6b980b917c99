// Package engine applies what a pipe makes of LDAP changes to a SCIM 2.0
// service.
//
// Destination takes a lang.Result (the class, endpoint, lookup filter and
// mapped values of one change), finds the existing resource — by a known
// SCIM id first, then by the endpoint's lookup filter — and creates it,
// changes exactly what differs over the attributes the class manages
// (a minimal RFC 7644 §3.5.2 PATCH, or a PUT that keeps what the pipe does
// not manage), does nothing when nothing differs, or deletes (or
// deactivates) it. Transient failures are retried by the SCIM client; what
// still fails is returned to the caller, which parks the change.
package engine
