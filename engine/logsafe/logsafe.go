// Package logsafe makes what scimsync prints for people safe to print:
// control characters from LDAP values or SCIM answers (ESC, BEL, C1 such as
// CSI, bidirectional overrides) are escaped so that they cannot drive the
// terminal or fake a log line, and values in log lines are capped in
// length so that one 100 KB attribute does not make a 100 KB line.
//
// Three tools, one rule: Text for a value (an error, a DN), Handler for a
// slog logger, Writer for a whole output stream (a command's stdout and
// stderr). Escapes are written \u001b (a rune) or \x9b (a byte that is not
// UTF-8), so that JSON stays valid JSON with the same meaning.
package logsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Caps on what one log line or error message keeps of a value.
const (
	MaxValue   = 2048 // bytes of one attribute value, DN or error in a log line
	MaxMessage = 4096 // bytes of a log line's message
)

// Unsafe reports whether a rune must not reach a terminal as is: C0
// controls (tab and newline included; Writer lets those two through), DEL,
// C1 controls, and the invisible bidirectional marks and overrides that
// reorder what a terminal shows (U+061C, U+200E–U+200F, U+202A–U+202E,
// U+2066–U+2069), and utf8.RuneError as decoded from a byte that is not UTF-8.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Escape returns s with every unsafe rune escaped (\u001b), newlines and
// tabs included, and every byte that is not UTF-8 escaped (\xff). It
// returns s itself when nothing needs escaping.
func Escape(s string) string {
	return escape(s, false)
}

func escape(s string, keepLines bool) string {
	i := safePrefix(s, keepLines)
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case Unsafe(r) && !(keepLines && (r == '\n' || r == '\t')):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// safePrefix returns the length of the longest prefix of s that escape
// leaves as it is: all of s when nothing needs escaping.
func safePrefix[T string | []byte](s T, keepLines bool) int {
	i := 0
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < 0x7f || keepLines && (c == '\n' || c == '\t') {
			i++ // printable ASCII, the bulk of every line
			continue
		}
		r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))])) // at most 4 bytes: no copy made
		if r == utf8.RuneError && n <= 1 || Unsafe(r) && !(keepLines && (r == '\n' || r == '\t')) {
			break
		}
		i += n
	}
	return i
}

// Cap returns s cut to at most max bytes, on a rune boundary, with what was
// cut said: "…(+98304 bytes)".
func Cap(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(+%d bytes)", s[:cut], len(s)-cut)
}

// Text is a value as a log line or an error message may show it: capped
// to MaxValue bytes, then escaped.
func Text(s string) string {
	return Escape(Cap(s, MaxValue))
}
