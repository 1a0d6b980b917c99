// Package ldaptest finds the real LDAP test servers for tests, and starts
// private ones for tests that restart or damage a server.
//
// The shared servers are OpenLDAP slapd (syncprov + accesslog) and 389
// Directory Server (Retro Changelog + Content Sync), started outside the
// test binary by
//
//	source .ci/ldap.sh      # exports OPENLDAP_* and DS389_*, stops them on exit
//
// or by hand with testdata/servers/start-openldap.sh and start-389ds.sh
// (their env files hold LDAP_URL etc.; .ci/ldap.sh renames them
// OPENLDAP_URL, DS389_URL, ...). When the variables are missing the test is
// skipped, unless SCIMSYNC_REQUIRE_SERVERS=1 (set by .ci/test.sh), which
// turns the skip into a failure.
//
// Tests share the servers, and go test runs packages in parallel, so a test
// never changes the seed entries (testdata/ldap/base.ldif): it adds its own
// with Unique names. A test that restarts a server or trims its changelog
// starts a private instance (StartOpenLDAP, Start389DS).
//
// Active Directory is a Samba AD domain controller (DirSync), started by
//
//	source .ci/samba.sh     # as root; exports SAMBA_AD_*, stops it on exit
//
// Samba's LDAP port is fixed at 389, so there is one DC per machine and no
// private instance: AD tests share it, never restart it, and work in an OU
// of their own (ADSubtree).
package ldaptest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// RequireServersEnv is the environment variable that makes a missing server a failure.
const RequireServersEnv = "SCIMSYNC_REQUIRE_SERVERS"

// SkipMessage is the reason given when the servers are not running.
const SkipMessage = "real LDAP servers not running: `source .ci/ldap.sh` starts slapd and 389-ds and exports OPENLDAP_* and DS389_* (see testdata/servers/)"

// Server is one running LDAP server.
type Server struct {
	Kind    string // "openldap", "389ds" or "ad"
	URL     string // ldap://127.0.0.1:PORT
	Base    string // dc=example,dc=com
	BindDN  string // an administrator (rootdn / Directory Manager)
	BindPW  string
	DataDir string // the start script's DATA_DIR: restart with Restart
	LDAPI   string // ldapi:// URL of a private server (SASL EXTERNAL as this user manages cn=config)
	private bool
}

// OpenLDAP returns the shared slapd, or skips (fails with
// SCIMSYNC_REQUIRE_SERVERS=1) when it is not running.
func OpenLDAP(t testing.TB) Server {
	t.Helper()
	return fromEnv(t, "openldap", "OPENLDAP")
}

// DS389 returns the shared 389 Directory Server, or skips like OpenLDAP.
func DS389(t testing.TB) Server {
	t.Helper()
	return fromEnv(t, "389ds", "DS389")
}

// ADSkipMessage is the reason given when the Samba AD DC is not running.
const ADSkipMessage = "Samba AD not running: as root, `source .ci/samba.sh` provisions and starts a DC on 127.0.0.1:389 and exports SAMBA_AD_* (see testdata/servers/start-samba-ad.sh)"

// AD returns the shared Samba Active Directory domain controller (the
// DirSync source's server), or skips like OpenLDAP. Not running as root, it
// always skips, saying why: Samba binds the privileged port 389 and has no
// setting to move it, so .ci/samba.sh starts no DC then, and
// SCIMSYNC_REQUIRE_SERVERS cannot ask for one.
func AD(t testing.TB) Server {
	t.Helper()
	if os.Getenv("SAMBA_AD_URL") == "" {
		if os.Geteuid() != 0 {
			t.Skip("Samba AD needs root: its LDAP server always binds port 389 (no port setting), so the AD tests run only as root (" + ADSkipMessage + ")")
		}
		if os.Getenv(RequireServersEnv) == "1" {
			t.Fatalf("%s (SAMBA_AD_URL is unset; %s=1 makes this a failure)", ADSkipMessage, RequireServersEnv)
		}
		t.Skip(ADSkipMessage)
	}
	return fromEnv(t, "ad", "SAMBA_AD")
}

func fromEnv(t testing.TB, kind, prefix string) Server {
	t.Helper()
	if os.Getenv(prefix+"_URL") == "" {
		if os.Getenv(RequireServersEnv) == "1" {
			t.Fatalf("%s (%s_URL is unset; %s=1 makes this a failure)", SkipMessage, prefix, RequireServersEnv)
		}
		t.Skip(SkipMessage)
	}
	var missing []string
	get := func(name string) string {
		v := os.Getenv(prefix + "_" + name)
		if v == "" {
			missing = append(missing, prefix+"_"+name)
		}
		return v
	}
	s := Server{Kind: kind, URL: get("URL"), Base: get("BASE"), BindDN: get("BIND_DN"), BindPW: get("BIND_PW"), DataDir: get("DATA_DIR")}
	if len(missing) > 0 {
		t.Fatalf("%s_URL is set but %s are not: export every line .ci/ldap.sh exports", prefix, strings.Join(missing, ", "))
	}
	c, err := ldap.DialURL(s.URL)
	if err == nil {
		err = c.Bind(s.BindDN, s.BindPW)
		c.Close()
	}
	if err != nil {
		script := "start-" + kind + ".sh"
		if kind == "ad" {
			script = "start-samba-ad.sh"
		}
		t.Fatalf("%s test server at %s does not answer (restart it with testdata/servers/%s): %v", kind, s.URL, script, err)
	}
	return s
}

// serversDir is testdata/servers of this repository.
func serversDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "servers")
}

// StartOpenLDAP starts a private slapd in a temporary directory (about
// 0.3–1 s), stopped when the test ends. env adds start-script settings
// (OPENLDAP_SESSIONLOG=memory ...). It skips or fails like OpenLDAP when the
// shared servers are not running, so that one switch governs every
// real-server test.
func StartOpenLDAP(t testing.TB, env ...string) Server {
	t.Helper()
	OpenLDAP(t)
	return startPrivate(t, "openldap", env)
}

// Start389DS starts a private 389 Directory Server (creating it takes
// 5–10 s), stopped and removed when the test ends.
func Start389DS(t testing.TB, env ...string) Server {
	t.Helper()
	DS389(t)
	return startPrivate(t, "389ds", env)
}

func startPrivate(t testing.TB, kind string, env []string) Server {
	t.Helper()
	// 389-ds needs a short path for its unix socket: use /tmp, not t.TempDir().
	dir, err := os.MkdirTemp("/tmp", "scimsync-test-"+kind+".")
	if err != nil {
		t.Fatal(err)
	}
	s := Server{Kind: kind, DataDir: dir, private: true}
	t.Cleanup(func() {
		out, err := exec.Command(filepath.Join(serversDir(), "stop-"+kind+".sh"), dir, "--rm").CombinedOutput()
		if err != nil {
			t.Logf("stopping the private %s: %v: %s", kind, err, out)
		}
	})
	// a port away from the shared servers' defaults, varied per process
	port := 20000 + os.Getpid()%20000
	if kind == "389ds" {
		env = append(env, fmt.Sprintf("DS389_PORT=%d", port+1))
	} else {
		env = append(env, fmt.Sprintf("OPENLDAP_PORT=%d", port))
	}
	s.Restart(t, env...)
	return s
}

// Stop stops the server, keeping its data (only for private servers).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if !s.private {
		t.Fatal("ldaptest: only a private server (StartOpenLDAP, Start389DS) may be stopped")
	}
	out, err := exec.Command(filepath.Join(serversDir(), "stop-"+s.Kind+".sh"), s.DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("stop-%s.sh: %v: %s", s.Kind, err, out)
	}
}

// Restart starts the stopped server again on the same port with its data
// (and the first time creates it), then reads its env file.
func (s *Server) Restart(t testing.TB, env ...string) {
	t.Helper()
	if !s.private {
		t.Fatal("ldaptest: only a private server (StartOpenLDAP, Start389DS) may be restarted")
	}
	cmd := exec.Command(filepath.Join(serversDir(), "start-"+s.Kind+".sh"), s.DataDir)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("start-%s.sh: %v: %s", s.Kind, err, out)
	}
	t.Logf("private %s started in %v", s.Kind, time.Since(start).Round(time.Millisecond))
	vals := readEnv(t, filepath.Join(s.DataDir, "env"))
	s.URL, s.Base, s.BindDN, s.BindPW = vals["LDAP_URL"], vals["LDAP_BASE"], vals["LDAP_BIND_DN"], vals["LDAP_BIND_PW"]
	s.LDAPI = vals["LDAPI_URL"]
}

func readEnv(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vals[k] = strings.Trim(v, "'")
		}
	}
	return vals
}

// Dial returns a connection bound as the administrator, closed when the
// test ends.
func (s Server) Dial(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL, err)
	}
	if err := c.Bind(s.BindDN, s.BindPW); err != nil {
		c.Close()
		t.Fatalf("bind to %s: %v", s.URL, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Source returns a source block for this server: kind is "changelog" or
// "syncrepl", the base is the server's suffix.
func (s Server) Source(kind string) lang.SourceConfig {
	return lang.SourceConfig{
		Kind:         kind,
		URLs:         []string{s.URL},
		BindDN:       s.BindDN,
		Password:     secret.New(s.BindPW),
		Base:         []string{s.Base},
		Timeout:      10 * time.Second,
		PollInterval: 200 * time.Millisecond,
	}
}

// Unique returns prefix plus a random suffix, for entry names that must not
// collide with other tests using the same server.
func Unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// AddUser adds an inetOrgPerson uid=UID under ou=People and returns its DN.
func (s Server) AddUser(t testing.TB, c *ldap.Conn, uid string, attrs map[string][]string) string {
	t.Helper()
	dn := "uid=" + uid + ",ou=People," + s.Base
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{"Test " + uid})
	req.Attribute("sn", []string{"Test"})
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := c.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// Subtree makes ou=NAME under the server's base, with ou=People and
// ou=Groups in it, and returns the server with that subtree as its Base:
// given as LDAP_BASE to a shipped pipe, it makes a run see only this test's
// changes, not those of the tests running beside it on the shared server.
// Everything under it is deleted when the test ends.
func (s Server) Subtree(t testing.TB, c *ldap.Conn, name string) Server {
	t.Helper()
	base := "ou=" + name + "," + s.Base
	for _, ou := range []string{name, "People", "Groups"} {
		dn := base
		if ou != name {
			dn = "ou=" + ou + "," + base
		}
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "organizationalUnit"})
		req.Attribute("ou", []string{ou})
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	t.Cleanup(func() {
		res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"1.1"}, nil))
		if err != nil {
			t.Logf("cleaning %s up: %v", base, err)
			return
		}
		// children first: an entry's DN is longer than its parent's
		slices.SortFunc(res.Entries, func(a, b *ldap.Entry) int { return len(b.DN) - len(a.DN) })
		for _, e := range res.Entries {
			_ = c.Del(ldap.NewDelRequest(e.DN, nil))
		}
	})
	sub := s
	sub.Base = base
	return sub
}

// ADSubtree makes OU=NAME under the AD domain's base, with OU=People and
// OU=Groups in it, and returns the server with that OU as its Base (given
// as LDAP_BASE to scripts/ad-to-scim.pipe, a run sees only this test's
// entries). Everything under it is deleted when the test ends (the
// tombstones stay, as AD keeps them).
func (s Server) ADSubtree(t testing.TB, c *ldap.Conn, name string) Server {
	t.Helper()
	base := "OU=" + name + "," + s.Base
	for _, dn := range []string{base, "OU=People," + base, "OU=Groups," + base} {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	t.Cleanup(func() {
		// the tree delete control (1.2.840.113556.1.4.805) removes the OU
		// with everything below it in one request
		del := ldap.NewDelRequest(base, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.805", true, "")})
		if err := c.Del(del); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Logf("cleaning %s up: %v", base, err)
		}
	})
	sub := s
	sub.Base = base
	return sub
}

// ADUser is an Active Directory account made by AddADUser.
type ADUser struct {
	DN  string // CN=NAME,OU=People,<base>
	UPN string // NAME@<domain>: the shipped pipe's userName
}

// AddADUser adds a user CN=NAME under OU=People of the server's Base
// (ADSubtree), with sAMAccountName NAME (at most 20 characters, AD's
// limit), userPrincipalName NAME@<domain>, and userAccountControl 544
// (an enabled normal account that needs no password: an account added
// over LDAP without one is otherwise disabled), plus attrs.
func (s Server) AddADUser(t testing.TB, c *ldap.Conn, name string, attrs map[string][]string) ADUser {
	t.Helper()
	if len(name) > 20 {
		t.Fatalf("AD account name %q is longer than 20 characters", name)
	}
	u := ADUser{DN: "CN=" + name + ",OU=People," + s.Base, UPN: name + "@" + ADDomain(s.Base)}
	req := ldap.NewAddRequest(u.DN, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	req.Attribute("sAMAccountName", []string{name})
	req.Attribute("userPrincipalName", []string{u.UPN})
	if _, ok := attrs["userAccountControl"]; !ok {
		req.Attribute("userAccountControl", []string{"544"})
	}
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := c.Add(req); err != nil {
		t.Fatalf("add %s: %v", u.DN, err)
	}
	return u
}

// AddADGroup adds a global security group CN=NAME under OU=Groups of the
// server's Base with members (DNs), and returns its DN.
func (s Server) AddADGroup(t testing.TB, c *ldap.Conn, name string, members ...string) string {
	t.Helper()
	dn := "CN=" + name + ",OU=Groups," + s.Base
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "group"})
	req.Attribute("sAMAccountName", []string{name})
	if len(members) > 0 {
		req.Attribute("member", members)
	}
	if err := c.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// ADGUID is an entry's objectGUID in the textual form AD tools show and
// the shipped pipe sends as externalId: the first three groups of the 16
// bytes little-endian, the last two in order. "" without a 16-byte value.
func ADGUID(e *ldap.Entry) string {
	b := e.GetRawAttributeValue("objectGUID")
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", []byte{b[3], b[2], b[1], b[0]}, []byte{b[5], b[4]}, []byte{b[7], b[6]}, b[8:10], b[10:])
}

// ADDomain is the DNS domain of a DN's DC= components:
// OU=x,DC=example,DC=com is example.com.
func ADDomain(dn string) string {
	var dcs []string
	if d, err := ldap.ParseDN(dn); err == nil {
		for _, r := range d.RDNs {
			for _, a := range r.Attributes {
				if strings.EqualFold(a.Type, "dc") {
					dcs = append(dcs, strings.ToLower(a.Value))
				}
			}
		}
	}
	return strings.Join(dcs, ".")
}
