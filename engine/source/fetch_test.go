package source

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

func openReader(t *testing.T, cfg lang.SourceConfig) *Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := OpenReader(ctx, cfg, Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestOpenReaderErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []lang.SourceConfig{
		{Kind: "ldif", File: "x.ldif"},
		{Kind: "syncrepl"},
		{Kind: "syncrepl", URLs: []string{"http://127.0.0.1:1"}},
		{Kind: "syncrepl", URLs: []string{"ldap://127.0.0.1:1"}, Timeout: time.Second}, // nothing listens
		{Kind: "changelog", URLs: []string{"ldap://127.0.0.1:1"}, Base: []string{"not a dn"}},
	} {
		if r, err := OpenReader(ctx, cfg, Options{}); err == nil {
			r.Close()
			t.Errorf("OpenReader(%+v) succeeded", cfg)
		}
	}
}

// TestReader reads entries by DN and by filter from the shared slapd, from
// many goroutines at once.
func TestReader(t *testing.T) {
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	prefix := ldaptest.Unique("rd")
	var dns []string
	for _, s := range []string{"a", "b", "c"} {
		dns = append(dns, srv.AddUser(t, c, prefix+"-"+s, map[string][]string{"mail": {s + "@example.com"}}))
	}
	t.Cleanup(func() {
		for _, dn := range dns {
			_ = c.Del(ldap.NewDelRequest(dn, nil))
		}
	})
	cfg := srv.Source("syncrepl")
	cfg.Identity = "entryUUID"
	r := openReader(t, cfg)
	ctx := context.Background()

	e, err := r.Entry(ctx, dns[0])
	if err != nil || e == nil {
		t.Fatalf("Entry(%s) = %v, %v", dns[0], e, err)
	}
	if e.First("uid") != prefix+"-a" || e.First("mail") != "a@example.com" || len(e.First("entryUUID")) != 36 {
		t.Errorf("entry: uid %q mail %q entryUUID %q", e.First("uid"), e.First("mail"), e.First("entryUUID"))
	}
	for _, dn := range []string{"uid=nobody-" + prefix + ",ou=People," + srv.Base, "uid=x,ou=Nowhere," + srv.Base} {
		if e, err := r.Entry(ctx, dn); e != nil || err != nil {
			t.Errorf("Entry(%s) = %v, %v; want nil, nil", dn, e, err)
		}
	}
	if !r.InScope(dns[0]) || r.InScope("uid=x,dc=other,dc=org") {
		t.Error("InScope")
	}

	all, err := r.Search(ctx, "", "(uid="+prefix+"-*)", 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("Search without limit: %d entries, %v", len(all), err)
	}
	two, err := r.Search(ctx, "ou=People,"+srv.Base, "(uid="+prefix+"-*)", 2)
	if err != nil || len(two) != 2 {
		t.Fatalf("Search limit 2: %d entries, %v", len(two), err)
	}
	if _, err := r.Search(ctx, "", "(uid="+prefix, 0); err == nil || !strings.Contains(err.Error(), "filter") {
		t.Errorf("a bad filter: %v", err)
	}
	if es, err := r.Search(ctx, "ou=Nowhere,"+srv.Base, "(objectClass=*)", 0); err != nil || len(es) != 0 {
		t.Errorf("a missing base: %d, %v", len(es), err)
	}

	// concurrent reads share the connection; one Close in the middle makes
	// the others dial again
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				if g == 0 && i == 7 {
					r.Close()
				}
				e, err := r.Entry(ctx, dns[(g+i)%3])
				if err != nil || e == nil {
					errs <- errors.Join(err, errors.New("no entry"))
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// a refused password is ErrAuth, without the password
	bad := cfg
	bad.Password = secret.New("wrong-password-for-the-reader")
	if _, err := OpenReader(ctx, bad, Options{}); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v", err)
	}
}

// TestReader389 reads the identity 389-ds keeps as an operational attribute.
func TestReader389(t *testing.T) {
	srv := ldaptest.DS389(t)
	c := srv.Dial(t)
	uid := ldaptest.Unique("rd")
	dn := srv.AddUser(t, c, uid, nil)
	t.Cleanup(func() { _ = c.Del(ldap.NewDelRequest(dn, nil)) })
	cfg := srv.Source("changelog")
	cfg.Identity = "nsUniqueId"
	r := openReader(t, cfg)
	e, err := r.Entry(context.Background(), dn)
	if err != nil || e == nil {
		t.Fatalf("Entry = %v, %v", e, err)
	}
	if id, _ := entryIdentity(e, "nsUniqueId"); len(id) != 36 {
		t.Errorf("nsUniqueId %q", e.First("nsUniqueId"))
	}
}

// TestReaderReconnect: a Reader whose server restarted dials again.
func TestReaderReconnect(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	cfg := srv.Source("syncrepl")
	r := openReader(t, cfg)
	ctx := context.Background()
	dn := "uid=alice,ou=People," + srv.Base
	if e, err := r.Entry(ctx, dn); err != nil || e == nil {
		t.Fatalf("Entry = %v, %v", e, err)
	}
	srv.Stop(t)
	start := time.Now()
	if _, err := r.Entry(ctx, dn); err == nil {
		t.Error("Entry succeeded with the server stopped")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a read with the server down took %v: it must give up soon", d)
	}
	srv.Restart(t)
	if e, err := r.Entry(ctx, dn); err != nil || e == nil {
		t.Fatalf("after the restart: Entry = %v, %v", e, err)
	}
}
