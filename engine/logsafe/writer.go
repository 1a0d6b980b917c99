package logsafe

import (
	"io"
	"os"
	"sync"
	"unicode/utf8"
)

// Writer escapes the unsafe runes of everything written through it, except
// newlines and tabs, which shape human output. A command's stdout and
// stderr go through one, so that no value it prints, in any message, can
// reach the terminal raw. It is safe for concurrent use; a rune split
// between two writes is joined first.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // the start of a rune cut at the end of the last write
}

// NewWriter returns a Writer to w; a Writer is returned as is.
func NewWriter(w io.Writer) *Writer {
	if s, ok := w.(*Writer); ok {
		return s
	}
	return &Writer{w: w}
}

// Write escapes p and writes it. It reports len(p) written when the
// escaped bytes were all written.
func (s *Writer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := p
	if len(s.pending) > 0 {
		buf = append(s.pending, p...)
		s.pending = nil
	}
	// Keep back an incomplete rune at the end, to be joined with the next write.
	end := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				end = i
			}
			break
		}
	}
	if end < len(buf) {
		s.pending = append([]byte(nil), buf[end:]...)
	}
	if safePrefix(buf[:end], true) == end {
		// Nothing to escape (a log line, as a rule): written as it is,
		// without a copy.
		if _, err := s.w.Write(buf[:end]); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	out := escape(string(buf[:end]), true)
	if _, err := io.WriteString(s.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a rune left incomplete by the last write, escaped byte by
// byte.
func (s *Writer) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	out := escape(string(s.pending), true)
	s.pending = nil
	_, err := io.WriteString(s.w, out)
	return err
}

// File returns the *os.File under w (w itself, or the one a Writer writes
// to), to ask whether it is a terminal or to draw on it.
func File(w any) (*os.File, bool) {
	if s, ok := w.(*Writer); ok {
		w = s.w
	}
	f, ok := w.(*os.File)
	return f, ok
}
