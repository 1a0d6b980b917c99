// Command scimsync keeps SCIM 2.0 services in step with LDAP directories.
// A pipe script declares the source, the SCIM service, the endpoints and the
// sync classes with their mappings; `scimsync help` lists the commands.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/scimsync/scimsync/engine/logsafe"
)

func main() {
	stopProfile := startProfile(os.Stderr) // profile.go: SCIMSYNC_CPUPROFILE and SCIMSYNC_MEMPROFILE, for benchmarks
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"check", "compile pipe scripts and report every problem with its place", runCheck},
		{"map", "show the SCIM resources a pipe makes of LDIF entries", runMap},
		{"repl", "try a pipe's mappings on sample entries at a prompt", runRepl},
		{"resync", "bulk-load the SCIM service from the source (--dry-run shows the requests)", runResync},
		{"run", "real-time sync: apply the source's changes as they come, resuming where it stopped", runRun},
		{"set-startpoint", "choose where run starts reading changes (--end, --beginning, …)", runSetStartpoint},
		{"failed", "list or retry the changes run could not apply", runFailed},
		{"status", "show whether run is running, its checkpoint, id map, parked changes and outages", runStatus},
		{"verify", "compare the SCIM service with the directory: missing, differing, orphaned resources (--repair fixes them)", runVerify},
		{"version", "print the version", runVersion},
	}
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and found problems
	exitUsage = 2 // the command line was wrong
)

// run is the whole program, with its streams, so tests can drive it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Everything a command prints for people goes through logsafe: no LDAP
	// value, SCIM answer or error carrying them reaches the terminal with
	// its control characters (ESC, BEL, C1, bidi overrides).
	safeOut, safeErr := logsafe.NewWriter(stdout), logsafe.NewWriter(stderr)
	defer safeOut.Flush()
	defer safeErr.Flush()
	stdout, stderr = safeOut, safeErr
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 {
			for _, c := range commands {
				if c.name == args[1] {
					return c.run([]string{"--help"}, stdin, stdout, stderr)
				}
			}
		}
		usage(stdout)
		return exitOK
	case "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "scimsync: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `scimsync keeps SCIM 2.0 services in step with LDAP directories.

Usage:
  scimsync <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "scimsync <command> --help" for a command's flags.
With no pipe script, map runs the embedded demo pipe.
`)
}
