package main

import (
	"fmt"
	"io"
	"strings"
)

func runCheck(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("check", "PIPE...", stderr)
	quiet := fs.BoolP("quiet", "q", false, "print nothing for scripts without problems")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "scimsync check: name at least one pipe script")
		return exitUsage
	}
	code := exitOK
	for i, path := range fs.Args() {
		if i > 0 && code != exitOK {
			fmt.Fprintln(stderr)
		}
		p, _, ok := loadPipe(path, stderr)
		if !ok {
			code = exitFail
			continue
		}
		warnInsecure(stderr, path, p) // checkwarn.go
		if !*quiet {
			n := 0
			for _, c := range p.Classes {
				n += len(c.Mappings)
			}
			fmt.Fprintf(stdout, "%s: ok (pipe %q: %s source, %s, %s, %s)\n", path, p.Name, p.Source.Kind,
				plural(len(p.Endpoints), "endpoint"), plural(len(p.Classes), "class"), plural(n, "mapping"))
		}
	}
	return code
}

// plural returns "1 class", "2 classes", "3 mappings".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
