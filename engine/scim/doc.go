// Package scim speaks SCIM 2.0 to service providers: the client (auth,
// TLS, typed errors, retries), the vocabulary (attribute paths, filters,
// schema definitions), and the minimal PATCH between a current and a
// desired resource.
//
// Client sends requests with HTTP Basic, a static bearer token or OAuth2
// client credentials (refreshed before expiry, and once on a 401), retries
// what is temporary (429, 5xx, timeouts, dropped connections) with backoff
// that honours Retry-After, and returns *Error (status, scimType, detail)
// or *TransportError for what is not. Diff compares two resources over the
// managed paths only and gives RFC 7644 §3.5.2 operations in shapes real
// servers accept (an add on the attribute for a new element, value filters
// to remove one, never a whole-list replace); PatchBodies splits them into
// requests; PutBody builds a PUT that keeps what the pipe does not manage.
//
// References:
//   - RFC 7643, "System for Cross-domain Identity Management: Core Schema":
//     attribute names and characteristics (§2), the User, Group and
//     Enterprise User resources (§4), schema definitions (§7) and their JSON
//     representation (§8.7.1), which this package embeds in schemas/.
//   - RFC 7644, "System for Cross-domain Identity Management: Protocol":
//     filters (§3.4.2.2), PATCH paths (§3.5.2), attribute notation (§3.10)
//     and message URNs (§3.4.2, §3.4.3, §3.5.2, §3.12).
//
// Mapping targets in a pipe script are SCIM attribute paths, parsed by
// ParsePath into a Path and checked against an endpoint's schemas by
// Resolve. Path.JSONPath and EscapeKey give gjson/sjson paths for building
// resource documents; URN keys contain dots, so keys must be escaped.
// Filters are parsed by ParseFilter and evaluated with Filter.Match; Quote
// makes a value safe to embed in a filter. Suggest offers "did you mean"
// hints.
//
// The embedded schemas are RFC 7643 §8.7.1 verbatim, with wrapped
// description lines joined by single spaces and one correction: Group
// "displayName" has "required": true, as RFC 7643 §4.2 says it is REQUIRED
// (RFC 7643 erratum; §8.7.1 printed false). The comment on schemaFS in
// schema.go lists the details.
package scim
