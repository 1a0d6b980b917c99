package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// The tests in this file run password sync (lang/password_change.go,
// engine/password.go, engine/source/password.go) against the real servers:
// a private 389-ds with nsslapd-unhashed-pw-switch on (start-389ds.sh's
// default), the shared slapd, and the SCIM test server, whose
// /_control/passwords shows the last password each user received.

// passwordPipe is a pipe that syncs people and their new passwords.
const passwordPipe = `pipe "pw-test"

source %KIND% {
  url          = env("LDAP_URL")
  base         = env("LDAP_BASE")
  bindDN       = env("LDAP_BIND_DN")
  password     = env("LDAP_BIND_PW")
  pollInterval = "200ms"
  identity     = "%IDENTITY%"
}

scim {
  url   = env("SCIM_URL")
  token = env("SCIM_TOKEN")
}

endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}

class people {
  base     = "ou=People," + env("LDAP_BASE")
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName           = first(uid)
    displayName        = first(displayName) ?? first(cn)
    @realtime password = newPassword
  }
}
`

// lockedBuffer collects every log line of a run, for the leak check.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pwRun is a Runner over passwordPipe whose every log line is kept.
type pwRun struct {
	*ldapRun
	dir  string
	logs *lockedBuffer
	log  *slog.Logger
}

// startPasswordRun starts a Runner reading srv with source kind, from the
// end of its changes.
func startPasswordRun(t *testing.T, srv ldaptest.Server, kind, identity string) *pwRun {
	t.Helper()
	env := scimtest.Server(t)
	vars := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
		"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": env.URL, "SCIM_TOKEN": env.Token}
	p, err := lang.Load("pw.pipe", strings.NewReplacer("%KIND%", kind, "%IDENTITY%", identity).Replace(passwordPipe), lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := &pwRun{ldapRun: &ldapRun{t: t, srv: srv, env: env, pipe: p, ua: scimtest.UserAgent(t), done: make(chan error, 1)},
		dir: t.TempDir(), logs: logs, log: log}
	cfg := p.SCIM
	cfg.UserAgent = r.ua
	if r.client, err = scim.NewClient(cfg, scim.WithLogger(log)); err != nil {
		t.Fatal(err)
	}
	if r.st, err = state.Open(r.dir, p.Name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pos, err := source.StartPoint(ctx, p.Source, source.StartSpec{Kind: source.StartEnd}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.SetCheckpoint(pos); err != nil {
		t.Fatal(err)
	}
	r.startLogged()
	return r
}

// startLogged is ldapRun.start with the source's log kept too.
func (r *pwRun) startLogged() {
	t := r.t
	pos, err := r.st.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := source.Options{Logger: r.log, KnownDN: r.st.KnownDN, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	src, err := source.Open(ctx, r.pipe.Source, pos, opts)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := source.OpenReader(ctx, r.pipe.Source, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.runner = &Runner{Pipe: r.pipe, Dest: &Destination{Client: r.client, Pipe: r.pipe, Log: r.log}, Store: r.st, Source: src,
		Workers: 4, Log: r.log, Entry: rd.Entry, EntryByID: rd.EntryByID,
		ParkedFirst: time.Hour} // retried when the test says so
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { r.done <- r.runner.Run(runCtx) }()
	t.Cleanup(func() {
		r.finish()
		src.Close()
		rd.Close()
	})
}

// finish stops the run (once) and closes the store.
func (r *pwRun) finish() {
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		r.t.Error("Run did not stop within 15s of its context's end")
	}
	r.st.Close()
}

// password waits until the SCIM server's last password for userName is
// want, sent by method.
func (r *pwRun) password(userName, want, method string) {
	r.t.Helper()
	waitFor(r.t, 15*time.Second, "the password of "+userName, func() (bool, string) {
		got, ok := r.env.Passwords(r.t, r.ua)[userName]
		return ok && got.Password == want && got.Method == method, fmt.Sprintf("received %v via %s", ok, got.Method)
	})
}

// lastPassword is the last password userName received ("" if none).
func (r *pwRun) lastPassword(userName string) string {
	return r.env.Passwords(r.t, r.ua)[userName].Password
}

// passwordRequestsSince lists this test's requests after seq that carried
// a password: the server's log shows every password value, wherever the
// request put it (a resource, a PATCH operation, an operation of a POST
// /Bulk), as "(withheld)".
func (r *pwRun) passwordRequestsSince(seq int) []string {
	var out []string
	for _, q := range r.env.Requests(r.t, r.ua) {
		if q.Seq > seq && strings.Contains(string(q.Body), `"(withheld)"`) {
			out = append(out, q.Method+" "+q.Path)
		}
	}
	return out
}

// displayName waits until userName's displayName is want.
func (r *pwRun) displayName(userName, want string) {
	r.t.Helper()
	r.user(userName, func(u gjson.Result) (bool, string) {
		return u.Get("displayName").String() == want, u.Get("displayName").String()
	})
}

// parked waits until the entry dn is parked and check accepts its record.
func (r *pwRun) parked(dn string, check func(state.Parked) bool) state.Parked {
	r.t.Helper()
	var got state.Parked
	waitFor(r.t, 20*time.Second, "the parked record of "+dn, func() (bool, string) {
		ps, err := r.st.ListParked()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if strings.EqualFold(p.DN, dn) {
				got = p
				return check(p), p.Error + " at " + p.PasswordAt
			}
		}
		return false, fmt.Sprintf("%d parked", len(ps))
	})
	return got
}

// noLeak fails for every form of every password found in the run's log,
// its state file and the state's backup.
func (r *pwRun) noLeak(passwords ...string) {
	r.t.Helper()
	r.finish()
	outputs := map[string]string{"log": r.logs.String()}
	for _, f := range []string{state.Path(r.dir, r.pipe.Name), state.Path(r.dir, r.pipe.Name) + ".bak"} {
		if b, err := os.ReadFile(f); err == nil {
			outputs[f] = string(b)
		}
	}
	if len(outputs) < 2 {
		r.t.Fatalf("no state file in %s", r.dir)
	}
	for what, text := range outputs {
		for _, pw := range passwords {
			for _, form := range secret.Forms(pw) {
				if strings.Contains(text, form) {
					r.t.Errorf("%s holds a password (form %q)", what, form)
				}
			}
		}
	}
}

// TestPassword389DS: against 389-ds with nsslapd-unhashed-pw-switch on, a
// modify of userPassword and an ldappasswd over LDAPI each reach SCIM as
// password; an add does not (389-ds records no clear text for an add), nor
// a modify of other attributes, nor an already hashed value, nor resync.
// A service refusing passwords parks the change after the rest is applied;
// its retry reads the password again from the changelog (the state holds
// only the change number); a trimmed record parks it with the reason while
// the entry's other changes sync. No password appears in the log or the
// state file.
func TestPassword389DS(t *testing.T) {
	srv := ldaptest.Start389DS(t)
	c := srv.Dial(t)
	r := startPasswordRun(t, srv, "changelog", "nsUniqueId")
	uid := ldaptest.Unique("pw")
	addPW, modPW, extPW, refPW, gonePW := "Add-"+uid, "Mod-"+uid, "Ext-"+uid, "Ref-"+uid, "Gone-"+uid
	dn := srv.AddUser(t, c, uid, map[string][]string{"userPassword": {addPW}, "displayName": {"One"}})
	r.displayName(uid, "One")
	if got := r.lastPassword(uid); got != "" {
		t.Errorf("the add sent a password; 389-ds was not seen recording one for adds")
	}

	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("userPassword", []string{modPW}) })
	r.password(uid, modPW, "PATCH")

	out, err := exec.Command("ldappasswd", "-x", "-H", srv.LDAPI, "-D", srv.BindDN, "-w", srv.BindPW, "-s", extPW, dn).CombinedOutput()
	if err != nil {
		t.Fatalf("ldappasswd over LDAPI: %v: %s", err, out)
	}
	r.password(uid, extPW, "PATCH")

	seq := r.lastSeq()
	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Two"}) })
	r.displayName(uid, "Two")
	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) {
		m.Replace("userPassword", []string{"{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY3ODkw"})
		m.Replace("displayName", []string{"Three"})
	})
	r.displayName(uid, "Three")
	if sent := r.passwordRequestsSince(seq); len(sent) > 0 || r.lastPassword(uid) != extPW {
		t.Errorf("a modify of other attributes or a hashed value sent a password: %v", sent)
	}

	t.Run("resync sends none", func(t *testing.T) {
		seq := r.lastSeq()
		ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Resynced"}) })
		le, err := NewLDAPEntries(context.Background(), r.pipe, LDAPOptions{CountFor: -1, Source: source.Options{Logger: r.log}})
		if err != nil {
			t.Fatal(err)
		}
		defer le.Close()
		if _, err := Resync(context.Background(), r.pipe, &Destination{Client: r.client, Pipe: r.pipe, Log: r.log}, le, ResyncOptions{}); err != nil {
			t.Fatal(err)
		}
		r.displayName(uid, "Resynced")
		if sent := r.passwordRequestsSince(seq); len(sent) > 0 {
			t.Errorf("resync sent a password: %v", sent)
		}
	})

	t.Run("refused, parked, retried from the changelog", func(t *testing.T) {
		undo := r.env.RefusePasswords(t, r.ua, 400, "mutability")
		ldapModify(t, c, dn, func(m *ldap.ModifyRequest) {
			m.Replace("userPassword", []string{refPW})
			m.Replace("displayName", []string{"Four"})
		})
		p := r.parked(dn, func(p state.Parked) bool {
			return strings.Contains(p.Error, "refused the password") && strings.HasPrefix(p.PasswordAt, "changelog:")
		})
		r.displayName(uid, "Four") // the rest of the change was applied
		undo()
		r.runner.RetryParkedSoon()
		r.password(uid, refPW, "PATCH")
		waitFor(t, 10*time.Second, "the record healed", func() (bool, string) {
			ps, _ := r.st.ListParked()
			return len(ps) == 0, fmt.Sprintf("%d parked", len(ps))
		})
		t.Logf("parked at %s, healed by reading it again", p.PasswordAt)
	})

	t.Run("trimmed: parked with the reason, the rest synced", func(t *testing.T) {
		undo := r.env.RefusePasswords(t, r.ua, 403, "")
		ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("userPassword", []string{gonePW}) })
		p := r.parked(dn, func(p state.Parked) bool {
			return p.PasswordAt != "" && strings.Contains(p.Error, "refused the password")
		})
		// a later change of the entry is applied, and the record stays:
		// the password is still owed
		ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Five"}) })
		r.displayName(uid, "Five")
		if ps, _ := r.st.ListParked(); len(ps) != 1 {
			t.Fatalf("a later change cleared the record of a password still owed: %d parked", len(ps))
		}
		if err := c.Del(ldap.NewDelRequest("changenumber="+strings.TrimPrefix(p.PasswordAt, "changelog:")+",cn=changelog", nil)); err != nil {
			t.Fatalf("trimming the changelog entry: %v", err)
		}
		undo()
		r.runner.RetryParkedSoon()
		r.parked(dn, func(p state.Parked) bool {
			return strings.Contains(p.Error, "no longer in the source") && p.Attempts >= 2
		})
		if got := r.lastPassword(uid); got != refPW {
			t.Errorf("a password was sent after its record was trimmed")
		}
	})

	r.noLeak(addPW, modPW, extPW, refPW, gonePW)
}

// TestPasswordOpenLDAP: against slapd, whose userPassword holds what a
// modify stores, a clear-text value reaches SCIM as password (in the
// create body, and by PATCH when it changes), a hashed value does not, nor
// a modify of other attributes. No password appears in the log or state.
func TestPasswordOpenLDAP(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	srv := shared.Subtree(t, c, ldaptest.Unique("pw"))
	r := startPasswordRun(t, srv, "syncrepl", "entryUUID")
	uid := ldaptest.Unique("pw")
	addPW, modPW := "Add-"+uid, "Mod-"+uid
	dn := srv.AddUser(t, c, uid, map[string][]string{"userPassword": {addPW}, "displayName": {"One"}})
	r.password(uid, addPW, "POST")

	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("userPassword", []string{modPW}) })
	r.password(uid, modPW, "PATCH")

	seq := r.lastSeq()
	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Two"}) })
	r.displayName(uid, "Two")
	ldapModify(t, c, dn, func(m *ldap.ModifyRequest) {
		m.Replace("userPassword", []string{"{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY3ODkw"})
		m.Replace("displayName", []string{"Three"})
	})
	r.displayName(uid, "Three")
	if sent := r.passwordRequestsSince(seq); len(sent) > 0 || r.lastPassword(uid) != modPW {
		t.Errorf("a modify of other attributes or a hashed value sent a password: %v", sent)
	}

	hashed := ldaptest.Unique("pwh")
	r2 := seq
	srv.AddUser(t, c, hashed, map[string][]string{"userPassword": {"{SSHA}c2FsdGVkaGFzaGVkdmFsdWUxMjM0NTY3ODkw"}})
	r.user(hashed, nil)
	if sent := r.passwordRequestsSince(r2); len(sent) > 0 {
		t.Errorf("a hashed stored password was sent: %v", sent)
	}
	r.noLeak(addPW, modPW)
}

// TestPasswordAt: a parked record keeps the position of the change whose
// password is owed: a new failing change that carries one replaces it, a
// retry (parked at the record's own position) and a change without one
// keep it.
func TestPasswordAt(t *testing.T) {
	withPW := &lang.Change{NewPassword: secret.New("x")}
	without := &lang.Change{}
	tests := []struct {
		name string
		old  state.Parked
		ch   *lang.Change
		pos  string
		want string
	}{
		{"first park with a password", state.Parked{}, withPW, "changelog:5", "changelog:5"},
		{"first park without", state.Parked{}, without, "changelog:5", ""},
		{"later change without one keeps it", state.Parked{Position: "changelog:5", PasswordAt: "changelog:5"}, without, "changelog:9", "changelog:5"},
		{"later change with one replaces it", state.Parked{Position: "changelog:9", PasswordAt: "changelog:5"}, withPW, "changelog:12", "changelog:12"},
		{"retry re-read keeps it", state.Parked{Position: "changelog:9", PasswordAt: "changelog:5"}, withPW, "changelog:9", "changelog:5"},
		{"retry after trimming keeps it", state.Parked{Position: "changelog:9", PasswordAt: "changelog:5"}, without, "changelog:9", "changelog:5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := passwordAt(tt.old, tt.ch, tt.pos); got != tt.want {
				t.Errorf("passwordAt = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDestinationPassword: with update = "patch" and "put", a create
// carries the change's new password in its body, the update of a modify
// that carried one sends it (PATCH replace password, or the PUT body, even
// when nothing else differs), a modify without one sends nothing; a
// service refusing passwords (403) fails the update with a
// *PasswordRefusedError that holds no value; passwords = "skip" sends
// none.
func TestDestinationPassword(t *testing.T) {
	env := scimtest.Server(t)
	for _, tt := range []struct{ update, passwords, method string }{
		{"patch", "send", "PATCH"}, {"put", "send", "PUT"}, {"patch", "skip", ""},
	} {
		t.Run(tt.update+" "+tt.passwords, func(t *testing.T) {
			script := fmt.Sprintf(`pipe "pwd"
source ldif { file = "x.ldif" }
scim {
  url = %q
  token = %q
  update = %q
  passwords = %q
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
class people {
  endpoint = Users
  map {
    userName           = first(uid)
    displayName        = first(cn)
    @realtime password = newPassword
  }
}
`, env.URL, env.Token, tt.update, tt.passwords)
			p, err := lang.Load("pwd.pipe", script, lang.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := p.SCIM
			cfg.UserAgent = scimtest.UserAgent(t)
			client, err := scim.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			d := &Destination{Client: client, Pipe: p}
			uid := scimtest.Unique("pwd")
			ev := p.NewEvaluator()
			apply := func(typ lang.ChangeType, pw string) (Applied, error) {
				e := lang.NewEntry("uid="+uid+",dc=x", []lang.Attr{{Name: "uid", Values: []string{uid}}, {Name: "cn", Values: []string{"C"}}})
				ch := &lang.Change{Type: typ, DN: e.DN, Entry: e, NewPassword: secret.New(pw)}
				if pw != "" {
					ch.Changed = []string{"userPassword"}
				}
				res, err := ev.Eval(ch, lang.Realtime)
				if err != nil {
					t.Fatal(err)
				}
				return d.ApplyKnown(context.Background(), res, Known{}, nil)
			}
			received := func() ReceivedPW { return env.Passwords(t, cfg.UserAgent)[uid] }
			pw1, pw2, pw3 := "P1-"+uid, "P2-"+uid, "P3-"+uid
			if a, err := apply(lang.Add, pw1); err != nil || a.Outcome != Created {
				t.Fatalf("create: %v, %v", a.Outcome, err)
			}
			if tt.passwords == "skip" {
				if got := received(); got.Password != "" {
					t.Errorf("passwords = \"skip\" sent one by %s", got.Method)
				}
			} else if got := received(); got.Password != pw1 || got.Method != "POST" {
				t.Errorf("create: the server received %s by %s", map[bool]string{true: "the password", false: "another value"}[got.Password == pw1], got.Method)
			}
			a, err := apply(lang.Modify, pw2)
			if err != nil {
				t.Fatal(err)
			}
			if tt.passwords == "skip" {
				if a.Outcome != Unchanged || received().Password != "" {
					t.Errorf("skip: %s, a password was received: %v", a.Outcome, received().Password != "")
				}
				return
			}
			if got := received(); a.Outcome != Updated || got.Password != pw2 || got.Method != tt.method {
				t.Errorf("modify with a new password: %s; the server has it: %v, by %s", a.Outcome, got.Password == pw2, got.Method)
			}
			if a, err := apply(lang.Modify, ""); err != nil || a.Outcome != Unchanged || a.Requests != 0 {
				t.Errorf("modify without one: %s, %d requests, %v", a.Outcome, a.Requests, err)
			}
			env.RefusePasswords(t, cfg.UserAgent, 403, "")
			_, err = apply(lang.Modify, pw3)
			if !IsPasswordRefused(err) || strings.Contains(err.Error(), pw3) || !strings.Contains(err.Error(), `passwords = "skip"`) {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// ReceivedPW is the test server's record of a received password.
type ReceivedPW = scimtest.ReceivedPassword
