// Package jsonw writes JSON strings: the one escaping routine that SCIM
// filter literals (RFC 7644 §3.4.2.2), the resources a pipe builds and the
// scimQuote builtin share. It imports only the standard library.
package jsonw

import "unicode/utf8"

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string (RFC 8259 §7): quotes,
// backslashes and control characters escaped, and also DEL, U+2028 and
// U+2029 (which break JavaScript consumers); invalid UTF-8 becomes U+FFFD.
// Unlike encoding/json it does not escape <, > and &, which SCIM does not
// need. Runs of plain bytes are copied at once.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + size
		case r == 0x2028 || r == 0x2029:
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// String returns s as a JSON string.
func String(s string) string {
	return string(AppendString(make([]byte, 0, len(s)+2), s))
}
