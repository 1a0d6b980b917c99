package engine

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ReadDNFile reads a list of DNs in the format resync's --dn-file and
// --failed-dns use (as PingDataSync's resync reads): one `dn: …` (or
// base64 `dn:: …`) per line, lines folded LDIF-style (a continuation starts
// with one space), `#` comments and blank lines ignored.
func ReadDNFile(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var dns []string
	var cur strings.Builder
	curLine, n := 0, 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		s := cur.String()
		cur.Reset()
		switch {
		case strings.HasPrefix(strings.ToLower(s), "dn::"):
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s[4:]))
			if err != nil {
				return fmt.Errorf("line %d: invalid base64 DN: %v", curLine, err)
			}
			dns = append(dns, string(b))
		case strings.HasPrefix(strings.ToLower(s), "dn:"):
			dns = append(dns, strings.TrimSpace(s[3:]))
		default:
			return fmt.Errorf("line %d: want dn: …, found %q", curLine, firstRunes(s, 40))
		}
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, " ") && cur.Len() > 0:
			cur.WriteString(line[1:])
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			if err := flush(); err != nil {
				return nil, err
			}
			curLine = n
			cur.WriteString(line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return dns, nil
}

// WriteDN writes one DN in the format ReadDNFile reads, with a comment
// saying why (the reason is written on one line).
func WriteDN(w io.Writer, dn, reason string) error {
	var b strings.Builder
	if reason != "" {
		b.WriteString("# ")
		b.WriteString(strings.Join(strings.Fields(reason), " "))
		b.WriteByte('\n')
	}
	if safeDN(dn) {
		b.WriteString("dn: " + dn + "\n\n")
	} else {
		b.WriteString("dn:: " + base64.StdEncoding.EncodeToString([]byte(dn)) + "\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// safeDN reports whether a DN can be written as is (RFC 2849 SAFE-STRING).
func safeDN(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[0] == ':' || s[0] == '<' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\n' || c == '\r' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func firstRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
