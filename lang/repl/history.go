package repl

import "strings"

// HistoryLine joins the lines of one input that went on over several lines
// (an expression or a mapping line left open) into the one line a line
// editor's history keeps, so that Up recalls the whole input, and typed
// again it means the same: a line break inside a "…" or '…' string becomes
// \n, as OneShot joins it; elsewhere it becomes a blank, and a comment that
// ended a line is left out (it would swallow what follows).
func HistoryLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	acc := lines[0]
	for _, l := range lines[1:] {
		st := scan(acc)
		if st.quote == '"' || st.quote == '\'' {
			acc += `\n` + l
			continue
		}
		if st.quote == 0 {
			acc = strings.TrimRight(st.code, " \t")
		}
		acc += " " + strings.TrimLeft(l, " \t")
	}
	return acc
}
