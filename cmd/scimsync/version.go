package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build information.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
				v = "devel-" + s.Value[:12]
			}
		}
		if v != "" {
			return v
		}
	}
	return "devel"
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", stderr)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	fmt.Fprintf(stdout, "scimsync %s\n", versionString())
	return exitOK
}

// newFlags makes a flag set that reports errors to stderr.
func newFlags(name, args string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {}
	_ = args
	return fs
}

// parseFlags parses; done is true when the command should return code now
// (--help, or a flag error).
func parseFlags(fs *pflag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(fs.Output(), "scimsync %s: %v\nrun 'scimsync %s --help' for usage\n", fs.Name(), err, fs.Name())
		return exitUsage, true
	}
	if *help {
		fmt.Fprintf(stdout, "Usage: scimsync %s\n\n", helpText[fs.Name()])
		fmt.Fprint(stdout, "Flags:\n"+fs.FlagUsages())
		return exitOK, true
	}
	return 0, false
}

// helpText is each command's synopsis and description.
var helpText = map[string]string{
	"repl": `repl [PIPE] [--entries FILE.ldif] [--ldap]

Opens a prompt to try a pipe script on sample entries before anything is
sent: step through the entries (:next, :prev, :entry N|DN, :show), type an
expression to evaluate it against the current entry (printed as
value : type), and see which class takes the entry and why earlier ones do
not (:class), the SCIM resource (:map), the lookup filter (:lookup) and the
PATCH that would turn a current resource into it (:patch FILE.json). Edit
the script and :load it again. :help lists the commands; Tab completes
commands, functions and attribute names; history is kept in
$XDG_STATE_HOME/scimsync/repl_history (~/.local/state/… by default).
Without PIPE, the embedded demo pipe runs; without --entries, the pipe's own
LDIF source file is read. With --ldap, :fetch DN and :search FILTER read
sample entries from the pipe's source directory, read-only. With standard
input not a terminal, lines are read from it with no prompt, and the exit
status is 1 if any line failed.`,
	"version": "version\n\nPrints the version of scimsync.",
	"check": `check PIPE...

Compiles each pipe script as a run would — settings evaluated (env() and
file() read), every expression compiled and type-checked, every target path
checked against the SCIM schemas — and prints each problem with its
file:line:col, the source line and a caret. Exit status 1 if any script has
a problem.`,
	"resync": `resync [PIPE] [--dry-run] [--dn-file FILE] [--failed-dns FILE] [--rate N]
       [--rate-file FILE] [--creates-only | --updates-only] [--exclude-attr ATTR]... [--workers N]

Compares every entry of the source with the SCIM service and creates or
updates what differs: the first matching class maps each entry (its
@resync mappings apply), the endpoint's lookup finds the existing resource,
and a minimal PATCH (or a PUT, if the script says so) changes only what
differs over the attributes the class manages; nothing differs, nothing is
sent. Entries of classes with ref(…) mappings (groups) go after the others,
so their members exist. With --dry-run nothing is sent: each request that
would be sent is printed (a service that cannot be reached makes every
entry a create). Progress goes to stderr (a bar on a terminal, a line every
--progress-interval otherwise), then a summary. Entries that fail are
listed, and written to --failed-dns in the format --dn-file reads, so they
can be fed again. Exit status 1 when any entry failed, 130 when interrupted.
A 401 or 403 from the SCIM service stops the resync at once, with what to
check (the credentials, the auth setting), and exit status 1. Without PIPE,
the embedded demo pipe runs as a dry run: the demo never writes.`,
	"run": `run PIPE [--once] [--workers N] [--rate N] [--startup-timeout DURATION] [--state-dir DIR]

Reads the source's changes from the pipe's checkpoint on, maps each with
the first matching class, and applies it to the SCIM service. Changes to
one entry are applied in order, different entries in parallel. The
checkpoint moves past a change only once it is applied or parked, so a
stopped or killed run resumes exactly where it stopped and loses nothing.
A change that fails is parked (see scimsync failed) and the pipe goes on.
Logs one line per change (JSON when stderr is not a terminal); never a value
of the entry. --once applies what is available and exits; its exit status
is 1 when changes remain parked. --rate caps the requests per second sent
to the SCIM service. A directory that is down at start-up is waited for,
with backoff (logged once when it goes and once when it is back), for at
most --startup-timeout (default: as long as it takes; 5m with --once);
refused credentials or a wrong base DN fail at once. While it runs,
scimsync failed list and retry reach it through a socket beside its state
file (mode 0600, removed on exit). SIGINT/SIGTERM finish the changes in
flight, save the checkpoint and exit. A pipe script must be named: the
embedded demo never writes to a SCIM service.`,
	"set-startpoint": `set-startpoint PIPE (--beginning | --end | --change-number N | --rewind DURATION) [--state-dir DIR]

Sets where run starts reading: --end (only changes made from now on; the
usual first step before resync), --beginning (every change the source still
has), --change-number N (a changelog's change N; an LDIF file's record N),
--rewind 2h30m (a changelog's changes of the last 2h30m; units d h m s ms).
A source kind that cannot start there says so.`,
	"failed": `failed (list | retry) PIPE [--state-dir DIR]

list shows the changes run parked because they failed (when, DN, class,
attempts, error); retry applies them again against the current SCIM
service: those that succeed leave the list. Exit status 1 when some still
fail. Both work while run runs: they then ask the running process (through
its control socket), and retry queues the parked changes for it to retry at
once, each in order with its entry's other changes.`,
	"map": `map [PIPE] [--entries FILE.ldif] [--current FILE.json]

Shows what the pipe makes of each LDIF record: the sync class that takes it,
the endpoint, the lookup filter and the SCIM resource as JSON. Content
records are adds (or modifies of an entry seen earlier in the file); change
records are applied in order, so a modify shows the entry as it stands
after it. References (ref(…)) to entries in the file are shown as
"(id of DN)": the SCIM id is only known when syncing. Without PIPE, the
embedded demo pipe runs; without --entries, the pipe's own LDIF source file
is read. With --current FILE.json (a resource as the SCIM service holds
it), each mapped resource is also shown as the PATCH request that would
turn that resource into it: only the attributes the class manages are
compared, and "no change needed" means no request would be sent.`,
}
