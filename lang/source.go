package lang

import (
	"sort"
	"unicode/utf8"
)

// Source is the text of one pipe script and its name, with an index of line
// starts so that byte offsets turn into line:column positions.
type Source struct {
	Name  string // the path shown in diagnostics
	Text  string
	lines []int // byte offset of the start of each line
}

// NewSource indexes text for position lookups.
func NewSource(name, text string) *Source {
	s := &Source{Name: name, Text: text, lines: []int{0}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// Pos is a position in a pipe script. Line and Col are 1-based; Col counts
// runes, so a caret lines up under non-ASCII text.
type Pos struct {
	File   string
	Offset int // byte offset in the file
	Line   int
	Col    int
}

// Pos returns the position of a byte offset.
func (s *Source) Pos(offset int) Pos {
	if offset < 0 {
		offset = 0
	}
	if offset > len(s.Text) {
		offset = len(s.Text)
	}
	line := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > offset }) - 1
	start := s.lines[line]
	return Pos{
		File:   s.Name,
		Offset: offset,
		Line:   line + 1,
		Col:    utf8.RuneCountInString(s.Text[start:offset]) + 1,
	}
}

// Line returns the text of a 1-based line, without its newline.
func (s *Source) Line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	start := s.lines[n-1]
	end := len(s.Text)
	if n < len(s.lines) {
		end = s.lines[n] - 1
	}
	if end > start && s.Text[end-1] == '\r' {
		end--
	}
	return s.Text[start:end]
}

// runeOffsetToByte converts expr's rune offset within text to a byte offset.
func runeOffsetToByte(text string, runes int) int {
	if runes <= 0 {
		return 0
	}
	n := 0
	for i := range text {
		if n == runes {
			return i
		}
		n++
	}
	return len(text)
}
