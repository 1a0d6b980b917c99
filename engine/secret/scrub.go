package secret

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// Withheld is what human and JSON outputs show in place of a password
// value that is sent but never shown (map, resync --dry-run, the REPL).
const Withheld = "(withheld)"

// Forms returns the ways a value may be written where a server or a log
// could echo it: as is, JSON-escaped, URL query- and path-escaped, and
// base64 (standard and URL alphabets, with and without padding). A leak
// check greps for all of them; Scrub replaces all of them.
func Forms(v string) []string {
	if v == "" {
		return nil
	}
	j, _ := json.Marshal(v)
	forms := []string{v, string(j[1 : len(j)-1]), url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}
	out := forms[:0]
	for _, f := range forms {
		dup := false
		for _, o := range out {
			dup = dup || o == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out
}

// Scrubber replaces known secret values, in every form Forms lists, with
// a placeholder. The zero Scrubber, or one made of no values, changes
// nothing. Longer forms are replaced first, so a value that contains
// another is replaced whole.
type Scrubber struct {
	r *strings.Replacer
}

// NewScrubber returns a Scrubber of values; each occurrence becomes with.
func NewScrubber(with string, values ...string) Scrubber {
	var pairs []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, f := range Forms(v) {
			if !seen[f] {
				seen[f] = true
				pairs = append(pairs, f)
			}
		}
	}
	if len(pairs) == 0 {
		return Scrubber{}
	}
	// strings.Replacer tries the old strings in argument order at each
	// position: longest first makes a value inside a longer one lose to it.
	sortByLenDesc(pairs)
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p, with)
	}
	return Scrubber{r: strings.NewReplacer(args...)}
}

func sortByLenDesc(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) > len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Active reports whether the scrubber has values to replace.
func (s Scrubber) Active() bool { return s.r != nil }

// String returns v with every known secret replaced.
func (s Scrubber) String(v string) string {
	if s.r == nil {
		return v
	}
	return s.r.Replace(v)
}

// Bytes returns b with every known secret replaced; b itself when there
// is nothing to replace.
func (s Scrubber) Bytes(b []byte) []byte {
	if s.r == nil {
		return b
	}
	out := s.r.Replace(string(b))
	if len(out) == len(b) && out == string(b) {
		return b
	}
	return []byte(out)
}
