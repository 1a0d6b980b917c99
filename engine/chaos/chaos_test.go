package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// config is one chaos run's size. The defaults are the CI run (a few
// minutes per directory on two cores); SCIMSYNC_CHAOS_LONG=1 is the soak
// run of BENCHMARKS.md; SCIMSYNC_CHAOS_CHANGES sets the number of changes,
// the rest scales with it.
type config struct {
	seed          int64
	changes       int           // random LDAP changes during the faults
	faultFor      time.Duration // how long the faults last
	kills         int           // SIGKILLs of `scimsync run`
	restarts      int           // directory restarts
	outages       int           // SCIM outages of outageFor
	outageFor     time.Duration // 503 for all, then connection refused for the last refuseFor
	refuseFor     time.Duration
	users, groups int     // the initial population
	rate          float64 // share of SCIM requests given a random fault
	timeout       string  // the pipe's scim timeout: some delays exceed it
}

func loadConfig(t *testing.T) config {
	c := config{changes: 1000, users: 60, groups: 6, rate: 0.05, timeout: "2s",
		outageFor: 36 * time.Second, refuseFor: 14 * time.Second}
	if os.Getenv("SCIMSYNC_CHAOS_LONG") == "1" {
		c.changes = 10000
	}
	if s := os.Getenv("SCIMSYNC_CHAOS_CHANGES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SCIMSYNC_CHAOS_CHANGES=%q: want a number of changes", s)
		}
		c.changes = n
	}
	c.seed = time.Now().UnixNano() % 1e9
	if s := os.Getenv("SCIMSYNC_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SCIMSYNC_CHAOS_SEED=%q: want the number a failed run printed", s)
		}
		c.seed = n
	}
	// About 10 changes a second; at least 20 kills, 5 restarts and one
	// outage per 1 000 changes, and more in proportion.
	c.faultFor = max(100*time.Second, time.Duration(c.changes)*100*time.Millisecond)
	c.kills = max(20, c.changes/50)
	c.restarts = max(5, c.changes/200)
	c.outages = max(1, c.changes/1000)
	return c
}

// TestChaos is item 6 of issue 11: random LDAP changes while the engine
// is killed, the directory restarted and the SCIM service fails or is
// away; then SCIM must equal the mapping of the final directory exactly.
// See the package doc and BENCHMARKS.md.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test takes minutes: not in -short mode")
	}
	cfg := loadConfig(t)
	binDir := t.TempDir()
	var once sync.Once
	var bin string
	build := func(t *testing.T) string {
		once.Do(func() {
			out := filepath.Join(binDir, "scimsync")
			cmd := exec.Command("go", "build", "-o", out, "./cmd/scimsync")
			cmd.Dir = repoRoot()
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			bin = out
		})
		if bin == "" {
			t.Fatal("the scimsync binary did not build")
		}
		return bin
	}
	for _, kind := range []string{"openldap", "389ds"} {
		t.Run(kind, func(t *testing.T) { runChaos(t, kind, cfg, build) })
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// pipeTemplate is modelled on scripts/openldap-to-scim.pipe and
// scripts/389ds-to-scim.pipe: users and groups of a test subtree, the
// classes' onDelete and onLeave left at their default (delete), and the
// SCIM url that of the fault proxy. %[1]s is the source kind, %[2]s the
// identity attribute, %[3]s source settings, %[4]s the SCIM timeout.
const pipeTemplate = `pipe "chaos-%[1]s"

source %[1]s {
  url      = env("LDAP_URL")
  base     = env("LDAP_BASE")
  bindDN   = env("LDAP_BIND_DN")
  password = env("LDAP_BIND_PW")
  identity = "%[2]s"
  timeout  = "5s"
%[3]s}

scim {
  url     = env("SCIM_URL")
  token   = env("SCIM_TOKEN")
  timeout = "%[4]s"
}

endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}

endpoint Groups {
  path    = "/Groups"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
  lookup  = "displayName eq " + scimQuote(first(cn))
}

class people {
  base     = "ou=People," + env("LDAP_BASE")
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName                     = first(uid)
    @create externalId           = first(%[2]s)
    name.givenName               = first(givenName)
    name.familyName              = first(sn)
    displayName                  = first(displayName) ?? first(cn)
    title                        = first(title)
    emails[type eq "work"].value = lower(first(mail))
  }
}

class groups {
  base     = "ou=Groups," + env("LDAP_BASE")
  when     = hasValue(objectClass, "groupOfNames")
  endpoint = Groups
  map {
    displayName        = first(cn)
    @create externalId = first(%[2]s)
    members            = ref(member, Users, Groups)
  }
}
`

func writePipe(t *testing.T, kind, timeout string) string {
	t.Helper()
	var text string
	switch kind {
	case "openldap":
		text = fmt.Sprintf(pipeTemplate, "syncrepl", "entryUUID", "", timeout)
	default:
		text = fmt.Sprintf(pipeTemplate, "changelog", "nsUniqueId", "  pollInterval = \"500ms\"\n", timeout)
	}
	path := filepath.Join(t.TempDir(), "chaos-"+kind+".pipe")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// privateSCIM is a SCIM server of this test's own, so that the final
// comparison sees only its resources.
type privateSCIM struct {
	url, token, control string
}

func startSCIM(t *testing.T) privateSCIM {
	t.Helper()
	e := scimtest.Private(t)
	return privateSCIM{url: e.URL, token: e.Token, control: e.ControlURL}
}

// fingerprint is a hash of everything the SCIM server holds, to see when
// it stops changing.
func (s privateSCIM) fingerprint() (string, error) {
	resp, err := http.Get(s.control + "/dump")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum[:8]), nil
}

// supervisor keeps one `scimsync run` process going: it restarts it after
// a kill or an exit, and logs each process to a file of its own.
type supervisor struct {
	bin, logDir string
	args, env   []string
	kill        chan struct{}
	stop        chan struct{}
	done        chan struct{}

	mu     sync.Mutex
	starts int
	kills  int
	exits  []string // unexpected exits: code and last log line
	logs   []string
}

func newSupervisor(bin, logDir string, args, env []string) *supervisor {
	return &supervisor{bin: bin, logDir: logDir, args: args, env: env,
		kill: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *supervisor) start() (*exec.Cmd, <-chan error, error) {
	s.mu.Lock()
	s.starts++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("run-%03d.log", s.starts))
	s.logs = append(s.logs, logPath)
	s.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); f.Close() }()
	return cmd, exited, nil
}

// loop runs until stop is closed; it then stops the process with SIGTERM
// (SIGKILL after 30 s).
func (s *supervisor) loop() {
	defer close(s.done)
	for {
		cmd, exited, err := s.start()
		if err != nil {
			s.mu.Lock()
			s.exits = append(s.exits, "start: "+err.Error())
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
				continue
			}
		}
		select {
		case err := <-exited:
			s.mu.Lock()
			s.exits = append(s.exits, fmt.Sprintf("%v: %s", err, lastLine(s.logs[len(s.logs)-1])))
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
			}
		case <-s.kill:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			s.mu.Lock()
			s.kills++
			s.mu.Unlock()
		case <-s.stop:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				s.mu.Lock()
				s.exits = append(s.exits, "did not stop within 30 s of SIGTERM")
				s.mu.Unlock()
			}
			return
		}
	}
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// runResult is what one `scimsync run --once` did, from its "stopped" line.
type runResult struct {
	code                                int
	applied, deleted, parked, unchanged int64
	tail                                string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit %d, applied %d, deleted %d, unchanged %d, parked %d", r.code, r.applied, r.deleted, r.unchanged, r.parked)
}

// runCmd runs a scimsync command to its end (at most limit).
func runCmd(bin string, env []string, limit time.Duration, args ...string) (code int, stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if code >= 0 {
		err = nil
	}
	return code, out.String(), errb.String(), err
}

func parseStopped(code int, stderr string) runResult {
	r := runResult{code: code}
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != "stopped" {
			continue
		}
		num := func(k string) int64 { f, _ := m[k].(float64); return int64(f) }
		r.applied, r.deleted, r.parked, r.unchanged = num("applied"), num("deleted"), num("parked"), num("unchanged")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	r.tail = strings.Join(lines[max(0, len(lines)-3):], "\n")
	return r
}

// failureClasses groups the "parked" and error lines of the run logs by
// their message with names and numbers taken out.
func failureClasses(logs []string) map[string]int {
	classes := map[string]int{}
	digits := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{8}(-[0-9a-f]{8}){3}|[0-9]+`)
	dns := regexp.MustCompile(`(?i)(uid|cn|ou)=[^ ,"]+`)
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			level, _ := m["level"].(string)
			if level != "WARN" && level != "ERROR" {
				continue
			}
			msg, _ := m["msg"].(string)
			detail, _ := m["err"].(string)
			if detail == "" {
				detail, _ = m["error"].(string)
			}
			key := level + " " + msg + ": " + dns.ReplaceAllString(digits.ReplaceAllString(detail, "N"), "$1=X")
			if len(key) > 200 {
				key = key[:200] + "…"
			}
			classes[key]++
		}
		f.Close()
	}
	return classes
}

func topClasses(classes map[string]int, n int) []string {
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return classes[keys[i]] > classes[keys[j]] })
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%6d × %s", classes[k], k))
	}
	return out
}

func runChaos(t *testing.T, kind string, cfg config, build func(*testing.T) string) {
	began := time.Now()
	t.Logf("chaos %s: seed %d (replay with SCIMSYNC_CHAOS_SEED=%d), %d changes over %v, %d kills, %d directory restarts, %d outages of %v",
		kind, cfg.seed, cfg.seed, cfg.changes, cfg.faultFor, cfg.kills, cfg.restarts, cfg.outages, cfg.outageFor)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos %s failed with seed %d: replay with SCIMSYNC_CHAOS_SEED=%d", kind, cfg.seed, cfg.seed)
		}
	})
	scimtest.Server(t) // skips, or fails under SCIMSYNC_REQUIRE_SERVERS=1, like every real-server test
	var srv ldaptest.Server
	if kind == "openldap" {
		srv = ldaptest.StartOpenLDAP(t)
	} else {
		srv = ldaptest.Start389DS(t)
	}
	sc := startSCIM(t)
	bin := build(t)

	// Each actor has a random source of its own, so that the seed fixes the
	// driver's changes and the fault schedule whatever the timing (the
	// proxy's picks follow the order in which requests arrive).
	seeded := func(n int64) *rand.Rand { return rand.New(rand.NewSource(cfg.seed*10 + n)) }
	base := "ou=chaos," + srv.Base
	dir := &directory{url: srv.URL, bindDN: srv.BindDN, bindPW: srv.BindPW}
	defer dir.close()
	for _, dn := range []string{base, "ou=People," + base, "ou=Groups," + base} {
		ou, _, _ := strings.Cut(strings.TrimPrefix(dn, "ou="), ",")
		if err := addOU(dir, dn, ou); err != nil {
			t.Fatal(err)
		}
	}
	drv := newDriver(dir, base, seeded(1))
	if err := drv.seedOUs(); err != nil {
		t.Fatal(err)
	}
	drv.seed(cfg.users, cfg.groups)
	if len(drv.errs) > 0 {
		t.Fatalf("seeding the directory: %s", strings.Join(drv.errs, "\n"))
	}
	seeded0 := drv.counts["add"] + drv.counts["group-add"]
	drv.counts = map[string]int{}

	timeout, _ := time.ParseDuration(cfg.timeout)
	proxy, err := newFaultProxy(sc.url, cfg.seed*10+2, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pipe := writePipe(t, kind, cfg.timeout)
	state := filepath.Join(t.TempDir(), "state")
	logDir := t.TempDir()
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LDAP_") || strings.HasPrefix(kv, "SCIM_")
	}), "LDAP_URL="+srv.URL, "LDAP_BASE="+base, "LDAP_BIND_DN="+srv.BindDN, "LDAP_BIND_PW="+srv.BindPW,
		"SCIM_URL="+proxy.URL(), "SCIM_TOKEN="+sc.token)

	// From an empty SCIM service: the run starts from the beginning (the
	// initial population by syncrepl's refresh or the changelog's adds)
	// and goes on in real time, under the faults from the start.
	if code, out, errOut, err := runCmd(bin, env, time.Minute, "set-startpoint", "--beginning", "--state-dir", state, pipe); err != nil || code != 0 {
		t.Fatalf("set-startpoint: exit %d %v\n%s%s", code, err, out, errOut)
	}
	sup := newSupervisor(bin, logDir, []string{"run", "--state-dir", state, pipe}, env)
	go sup.loop()
	defer func() {
		select {
		case <-sup.stop:
		default:
			close(sup.stop)
		}
		<-sup.done
	}()

	// ---- the faults ------------------------------------------------------
	proxy.SetRate(cfg.rate)
	faultsStart := time.Now()
	var wg sync.WaitGroup
	abort := make(chan struct{}) // closed when the test ends early: the goroutines stop
	defer func() { close(abort); wg.Wait() }()
	wg.Add(1)
	go func() { // the LDAP changes, evenly spread over faultFor
		defer wg.Done()
		hardStop := faultsStart.Add(cfg.faultFor + 2*time.Minute)
		for i := range cfg.changes {
			if at := faultsStart.Add(cfg.faultFor * time.Duration(i) / time.Duration(cfg.changes)); time.Until(at) > 0 {
				time.Sleep(time.Until(at))
			}
			select {
			case <-abort:
				return
			default:
			}
			if time.Now().After(hardStop) {
				return
			}
			drv.step()
		}
	}()
	wg.Add(1)
	go func() { // SIGKILLs of `run` at random instants
		defer wg.Done()
		rng := seeded(3)
		for _, at := range instants(rng, cfg.kills, faultsStart, cfg.faultFor) {
			select {
			case <-abort:
				return
			case <-time.After(time.Until(at)):
			}
			select {
			case sup.kill <- struct{}{}:
			case <-time.After(10 * time.Second): // the supervisor is restarting a process that exited
			}
		}
	}()
	var outageSecs float64
	var outageErr error
	wg.Add(1)
	go func() { // SCIM outages: 503 for everything, then connections refused
		defer wg.Done()
		for i := range cfg.outages {
			at := faultsStart.Add(cfg.faultFor * time.Duration(2*i+1) / time.Duration(2*cfg.outages+1))
			time.Sleep(time.Until(at))
			t0 := time.Now()
			proxy.SetOutage(true)
			time.Sleep(cfg.outageFor - cfg.refuseFor)
			proxy.Refuse()
			time.Sleep(cfg.refuseFor)
			proxy.SetOutage(false)
			if err := proxy.Accept(); err != nil {
				outageErr = err
				return
			}
			outageSecs += time.Since(t0).Seconds()
		}
	}()
	// Directory restarts happen here, on the test goroutine, because
	// Stop and Restart fail the test on error.
	restarts := 0
	rng := seeded(4)
	for _, at := range instants(rng, cfg.restarts, faultsStart, cfg.faultFor) {
		time.Sleep(time.Until(at))
		srv.Stop(t)
		time.Sleep(500*time.Millisecond + time.Duration(rng.Int63n(int64(2500*time.Millisecond))))
		srv.Restart(t)
		restarts++
	}
	wg.Wait()
	proxy.SetRate(0)
	faultPhase := time.Since(faultsStart)
	if outageErr != nil {
		t.Fatal(outageErr)
	}
	if len(drv.errs) > 0 {
		t.Errorf("the directory refused %d of the driver's changes (a fault of the test):\n%s", len(drv.errs), strings.Join(drv.errs[:min(10, len(drv.errs))], "\n"))
	}

	// ---- catching up -----------------------------------------------------
	// run goes on without faults until SCIM stops changing for 15 s (at
	// most 3 min), then stops; `run --once` then applies whatever is left,
	// until a pass finds nothing to do (at most 4 passes).
	catchStart := time.Now()
	last, stableSince := "", time.Now()
	for time.Since(catchStart) < 3*time.Minute {
		fp, err := sc.fingerprint()
		if err != nil {
			t.Fatalf("reading the SCIM server: %v", err)
		}
		if fp != last {
			last, stableSince = fp, time.Now()
		} else if time.Since(stableSince) >= 15*time.Second {
			break
		}
		time.Sleep(time.Second)
	}
	close(sup.stop)
	<-sup.done
	var passes []runResult
	for range 4 {
		code, _, errOut, err := runCmd(bin, env, 3*time.Minute, "run", "--once", "--state-dir", state, pipe)
		if err != nil {
			t.Fatalf("run --once: %v", err)
		}
		r := parseStopped(code, errOut)
		passes = append(passes, r)
		if r.code == 0 && r.applied == 0 && r.deleted == 0 {
			break
		}
	}
	catchUp := time.Since(catchStart)
	code, failedOut, failedErr, err := runCmd(bin, env, time.Minute, "failed", "list", "--state-dir", state, pipe)
	if err != nil || code != 0 {
		t.Errorf("failed list: exit %d %v\n%s", code, err, failedErr)
	}
	parkedLines := strings.Split(strings.TrimSpace(failedOut), "\n")
	parked := 0
	if n := len(parkedLines); n > 0 {
		fmt.Sscanf(parkedLines[n-1], "%d failed changes", &parked)
		parkedLines = parkedLines[:n-1]
	}

	// ---- the comparison --------------------------------------------------
	p, err := lang.LoadFile(pipe, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		for _, kv := range env {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readDirectory(srv.URL, srv.BindDN, srv.BindPW, base, p)
	if err != nil {
		t.Fatalf("reading the final directory: %v", err)
	}
	wants, err := expected(p, entries)
	if err != nil {
		t.Fatalf("mapping the final directory: %v", err)
	}
	var held []got
	for _, ep := range []string{"Users", "Groups"} {
		g, err := readSCIM(context.Background(), sc.url, sc.token, ep)
		if err != nil {
			t.Fatalf("reading SCIM: %v", err)
		}
		held = append(held, g...)
	}
	rep := compare(wants, held)

	// ---- figures ---------------------------------------------------------
	faults, requests, late := proxy.Counts()
	var fs []string
	for i, n := range faults {
		fs = append(fs, fmt.Sprintf("%s %d", faultNames[i], n))
	}
	var cs []string
	total := 0
	for _, k := range []string{"add", "add-outside", "modify", "modify-outside", "rename", "move-out", "move-back", "delete",
		"member-add", "member-remove", "group-add", "group-rename", "group-delete"} {
		cs = append(cs, fmt.Sprintf("%s %d", k, drv.counts[k]))
		total += drv.counts[k]
	}
	sup.mu.Lock()
	kills, starts, exits, logs := sup.kills, sup.starts, slices.Clone(sup.exits), slices.Clone(sup.logs)
	sup.mu.Unlock()
	var ps []string
	for _, r := range passes {
		ps = append(ps, "["+r.String()+"]")
	}
	t.Logf("figures %s: seed %d; %d seeded entries, %d changes (%s) + %d referential-integrity group updates, %d driver retries after LDAP errors; "+
		"%d SIGKILLs, %d run starts, %d other exits; %d directory restarts; SCIM %d requests through the proxy, faults: %s (%d delays beyond the %s timeout); "+
		"outage %.0f s; fault phase %v, catch-up %v (run --once passes: %s); "+
		"result: %s, parked %d; elapsed %v",
		kind, cfg.seed, seeded0, total, strings.Join(cs, ", "), drv.refint, dir.retries,
		kills, starts, len(exits), restarts, requests, strings.Join(fs, ", "), late, cfg.timeout,
		outageSecs, faultPhase.Round(time.Second), catchUp.Round(time.Second), strings.Join(ps, " "),
		rep.summary(), parked, time.Since(began).Round(time.Second))
	if len(exits) > 0 {
		t.Logf("run exited by itself %d times, e.g.:\n%s", len(exits), strings.Join(exits[:min(5, len(exits))], "\n"))
	}
	if classes := failureClasses(logs); len(classes) > 0 {
		t.Logf("warnings and errors of the run processes, by class:\n%s", strings.Join(topClasses(classes, 15), "\n"))
	}

	// ---- the verdict -----------------------------------------------------
	if total < cfg.changes*9/10 {
		t.Errorf("the driver made %d of %d changes in time", total, cfg.changes)
	}
	if kills < cfg.kills || restarts < cfg.restarts {
		t.Errorf("%d kills and %d directory restarts, want %d and %d", kills, restarts, cfg.kills, cfg.restarts)
	}
	if !rep.ok() {
		t.Errorf("SCIM is not the mapping of the final directory: %s\n%s", rep.summary(), strings.Join(rep.details, "\n"))
	}
	if parked > 0 {
		t.Errorf("%d changes parked after the catch-up (scimsync failed list):\n%s", parked, strings.Join(parkedLines[:min(10, len(parkedLines))], "\n"))
	}
	if last := passes[len(passes)-1]; last.code != 0 || last.applied != 0 || last.deleted != 0 {
		t.Errorf("the last run --once still had work or failed: %s\n%s", last, last.tail)
	}
}

// instants returns n random instants in the middle 90 % of [from,
// from+span), sorted.
func instants(rng *rand.Rand, n int, from time.Time, span time.Duration) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = from.Add(span/20 + time.Duration(rng.Int63n(int64(span*9/10))))
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

func addOU(dir *directory, dn, ou string) error {
	return dir.do(func(c *ldap.Conn) error {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "organizationalUnit"})
		req.Attribute("ou", []string{ou})
		return c.Add(req)
	}, ldap.LDAPResultEntryAlreadyExists)
}
