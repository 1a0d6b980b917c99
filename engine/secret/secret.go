// Package secret holds credentials read by pipe scripts (passwords, tokens,
// client secrets) in a type that cannot leak through logs, errors or JSON.
//
// Every way of printing a Secret — fmt verbs, %#v, JSON, slog — yields
// "[redacted]"; only Reveal returns the value, and it is called only where
// the credential is put on the wire.
package secret

import "log/slog"

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// Secret is a credential value. The zero value is the empty secret.
type Secret struct {
	v string
}

// New wraps a credential value.
func New(v string) Secret { return Secret{v: v} }

// Reveal returns the credential. Call it only to put the value on the wire.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns Redacted, so fmt's %s and %v never show the value.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted, so %#v never shows the value.
func (s Secret) GoString() string { return Redacted }

// MarshalJSON encodes the secret as the string Redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText encodes the secret as Redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue makes log/slog print Redacted.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }
