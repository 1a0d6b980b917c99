package main

import (
	"fmt"
	"io"
	"os"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// stateDirWarnings is where openState warns about a state directory that
// others may write to. openState has no writer of its own; every command
// that opens the state prints its messages on the process's stderr, so
// the warning goes there too. Tests replace it (never in parallel).
var stateDirWarnings io.Writer = os.Stderr

// warnLooseStateDir warns when the state directory is writable by its
// group or by everyone.
func warnLooseStateDir(dir string) {
	if msg := looseStateDir(dir); msg != "" {
		fmt.Fprintf(logsafe.NewWriter(stateDirWarnings), "scimsync: WARNING: %s\n", msg)
	}
}

// looseStateDir says what is wrong with a state directory's permissions,
// or "". Whoever can write in the directory can replace the state file
// (the files themselves are 0600): a forged checkpoint skips or replays
// changes, a forged id map points updates and deletes at other resources.
// A sticky directory (/tmp) still lets others create PIPE.state before
// scimsync does.
func looseStateDir(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return ""
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return ""
	}
	who := "its group"
	if perm&0o002 != 0 {
		who = "everyone"
	}
	return fmt.Sprintf("the state directory %s is writable by %s (mode %04o): whoever can write there can replace the state "+
		"(checkpoint, id map, parked changes) and steer what is sent to the SCIM service; "+
		"make it private: chmod 700 %s", dir, who, perm, dir)
}
