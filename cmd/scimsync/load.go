package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/scripts"
)

// loadPipe loads a pipe script from a file, or the embedded demo when path
// is "". Diagnostics are rendered to stderr.
func loadPipe(path string, stderr io.Writer) (*lang.Pipe, lang.LoadOptions, bool) {
	opts := lang.LoadOptions{}
	if path == "" {
		path = scripts.DemoPipe
		opts.ReadFile = func(name string) ([]byte, error) { return fs.ReadFile(scripts.Demo, name) }
	}
	p, err := lang.LoadFile(path, opts)
	if err != nil {
		var ds *lang.Diagnostics
		if errors.As(err, &ds) {
			ds.Render(stderr)
		} else if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "scimsync: %s: no such file\n", path)
		} else {
			fmt.Fprintf(stderr, "scimsync: %v\n", err)
		}
		return nil, opts, false
	}
	if w := p.Warnings(); w != nil {
		w.Render(stderr) // e.g. a mapping that can only send a stored password hash
	}
	return p, opts, true
}

// openFile opens a file named on the command line or by the pipe, through
// the load options (the embedded demo reads from the binary).
func openFile(opts lang.LoadOptions, name string) (io.ReadCloser, error) {
	if opts.ReadFile != nil {
		data, err := opts.ReadFile(name)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytesReader(data)), nil
	}
	return os.Open(name)
}
