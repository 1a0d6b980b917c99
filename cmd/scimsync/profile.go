package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// Profiles of a whole command, for measuring scimsync
// (testdata/bench/runcpu.sh), not for users: no flag and no help text, as a
// flag would be one more thing every command's --help shows. A profile
// holds function names and sample counts, never an LDAP value or a secret.
const (
	cpuProfileEnv = "SCIMSYNC_CPUPROFILE" // a file for the CPU profile
	memProfileEnv = "SCIMSYNC_MEMPROFILE" // a file for the allocations profile, written at exit
)

// startProfile starts the profiles the environment asks for and returns
// the function that stops and writes them. main calls that function after
// the command returns, before os.Exit, so every normal exit path (run
// --once's end, SIGINT/SIGTERM through the commands' contexts, usage
// errors) writes complete profiles. A profile that cannot be made is
// reported and the command runs without it: measuring must not change
// whether it runs.
func startProfile(stderr io.Writer) (stop func()) {
	fail := func(env string, err error) { fmt.Fprintf(stderr, "scimsync: %s: %v\n", env, err) }
	stopCPU := func() {}
	if path := os.Getenv(cpuProfileEnv); path != "" {
		if f, err := os.Create(path); err != nil {
			fail(cpuProfileEnv, err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fail(cpuProfileEnv, err)
			f.Close()
		} else {
			stopCPU = func() {
				pprof.StopCPUProfile()
				if err := f.Close(); err != nil {
					fail(cpuProfileEnv, err)
				}
			}
		}
	}
	return func() {
		stopCPU()
		if path := os.Getenv(memProfileEnv); path != "" {
			if err := writeAllocs(path); err != nil {
				fail(memProfileEnv, err)
			}
		}
	}
}

// writeAllocs writes the allocations profile (every allocation since the
// start, sampled as the runtime does by default) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
