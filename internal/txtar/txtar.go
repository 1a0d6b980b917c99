// Package txtar reads and writes the test-case archives under testdata/: a
// comment, then files, each introduced by a `-- name --` line. It is the
// format of golang.org/x/tools/txtar, in the few lines the tests need.
package txtar

import (
	"os"
	"strings"
)

// Archive is a comment and named files, in order.
type Archive struct {
	Comment string
	Files   []File
}

// File is one section of an archive.
type File struct {
	Name string
	Data string
}

// Parse reads an archive. A line `-- name --` starts a file; what comes
// before the first is the comment.
func Parse(data string) *Archive {
	a := &Archive{}
	name, inFile := "", false
	var b strings.Builder
	flush := func() {
		if inFile {
			a.Files = append(a.Files, File{Name: name, Data: b.String()})
		} else {
			a.Comment = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(data, "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			flush()
			name, inFile = strings.TrimSpace(trimmed[3:len(trimmed)-3]), true
			continue
		}
		b.WriteString(line)
	}
	flush()
	return a
}

// ReadFile reads and parses an archive file.
func ReadFile(path string) (*Archive, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(string(data)), nil
}

// Get returns a file's data and whether the archive has it.
func (a *Archive) Get(name string) (string, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return "", false
}

// Set replaces a file's data, or adds the file at the end.
func (a *Archive) Set(name, data string) {
	for i, f := range a.Files {
		if f.Name == name {
			a.Files[i].Data = data
			return
		}
	}
	a.Files = append(a.Files, File{Name: name, Data: data})
}

// Format writes the archive back; each file ends with a newline.
func (a *Archive) Format() string {
	var b strings.Builder
	b.WriteString(a.Comment)
	for _, f := range a.Files {
		b.WriteString("-- " + f.Name + " --\n")
		b.WriteString(f.Data)
		if f.Data != "" && !strings.HasSuffix(f.Data, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}
