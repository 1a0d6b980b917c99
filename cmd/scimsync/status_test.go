package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// TestStatusWhileRunning: `status` answers while `run` runs and holds the
// state (through the control socket: running, its pid, the parked change,
// no outage), and from the state file once it has stopped (not running,
// the same parked count and error, the id map).
func TestStatusWhileRunning(t *testing.T) {
	env := scimtest.Server(t)
	bin := binary(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("sts")
	proxy := newSCIMProxy(t, env, prefix+"-hold")
	ldif := fmt.Sprintf("dn: cn=%s-nouid,ou=People,dc=example,dc=com\ncn: no uid\n\n"+
		"dn: uid=%s-ok,ou=People,dc=example,dc=com\nuid: %s-ok\ncn: Ok\n\n"+
		"dn: uid=%s-hold,ou=People,dc=example,dc=com\nuid: %s-hold\ncn: Held\n\n", prefix, prefix, prefix, prefix, prefix)
	ldifPath := filepath.Join(dir, "c.ldif")
	pipePath := filepath.Join(dir, "c.pipe")
	must(t, os.WriteFile(ldifPath, []byte(ldif), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	stateDir := filepath.Join(dir, "state")
	t.Setenv("SCIM_URL", proxy.URL)
	t.Setenv("SCIM_TOKEN", env.Token)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--once", "--workers", "1", "--state-dir", stateDir, pipePath)
	cmd.Env = append(os.Environ(), "SCIM_URL="+proxy.URL, "SCIM_TOKEN="+env.Token)
	var logs syncBuffer
	cmd.Stderr = &logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-proxy.held:
	case err := <-exited:
		t.Fatalf("run exited before its request was held: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no request held\n%s", logs.String())
	}
	var s pipeStatus
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, stdout, stderr := runCLI(t, "status", "--json", "--state-dir", stateDir, pipePath)
		if code != exitOK {
			t.Fatalf("status while run runs: exit %d\n%s%s", code, stdout, stderr)
		}
		must(t, json.Unmarshal([]byte(stdout), &s))
		if s.Parked == 1 && s.IDMap["Users"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the parked change and the user created: %+v\nrun's log:\n%s", s, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !s.Running || s.PID != cmd.Process.Pid || s.Since.IsZero() || s.Outage != "" || s.LastApplied.IsZero() ||
		s.OldestParked.IsZero() || s.LastError == "" || s.Counters["parked"] != 1 {
		t.Errorf("status while run runs: %+v", s)
	}
	code, human, _ := runCLI(t, "status", "--state-dir", stateDir, pipePath)
	if code != exitOK || !strings.Contains(human, fmt.Sprintf("running, pid %d", cmd.Process.Pid)) || !strings.Contains(human, "parked:       1, oldest") {
		t.Errorf("status (human) while run runs: exit %d\n%s", code, human)
	}

	proxy.letGo()
	<-exited
	code, stdout, stderr := runCLI(t, "status", "--json", "--state-dir", stateDir, pipePath)
	var after pipeStatus
	if code != exitOK || json.Unmarshal([]byte(stdout), &after) != nil {
		t.Fatalf("status after the run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after.Running || after.Parked != 1 || after.IDMap["Users"] != 2 || after.Checkpoint == "" || after.LastError != s.LastError {
		t.Errorf("status after the run: %+v (while running: %+v)", after, s)
	}
}
