package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// TestCookieParts: the CSNs of OpenLDAP cookies by server id, 389-ds's
// change number, and CSN times.
func TestCookieParts(t *testing.T) {
	tests := []struct {
		cookie string
		csns   map[string]string
		number int64 // -1: none
	}{
		{"rid=000,csn=20261202063517.755160Z#000000#000#000000",
			map[string]string{"000": "20261202063517.755160Z#000000#000#000000"}, -1},
		{"rid=001,sid=002,csn=20261202063517.755160Z#000000#001#000000;20261202063518.000001Z#000002#002#000000",
			map[string]string{"001": "20261202063517.755160Z#000000#001#000000", "002": "20261202063518.000001Z#000002#002#000000"}, -1},
		{"rid=000", map[string]string{}, -1},
		{"localhost:14389#cn=directory manager:dc=example,dc=com:(objectClass=*)#8", map[string]string{}, 8},
		{"localhost:14389#cn=x:dc=example,dc=com:(objectClass=*)#", map[string]string{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.cookie, func(t *testing.T) {
			got := cookieCSNs(tt.cookie)
			if len(got) != len(tt.csns) {
				t.Fatalf("cookieCSNs = %v, want %v", got, tt.csns)
			}
			for sid, c := range tt.csns {
				if got[sid] != c {
					t.Errorf("sid %s: %q, want %q", sid, got[sid], c)
				}
			}
			n, ok := cookieChangeNumber(tt.cookie)
			if (tt.number >= 0) != ok || ok && n != tt.number {
				t.Errorf("cookieChangeNumber = %d, %v; want %d", n, ok, tt.number)
			}
		})
	}
	for _, tt := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"20261202063517Z", time.Date(2026, 12, 2, 6, 35, 17, 0, time.UTC), false},
		{"20261202063517.755160Z", time.Date(2026, 12, 2, 6, 35, 17, 755160000, time.UTC), false},
		{"20261202063517.755160Z#000000#000#000000", time.Time{}, true}, // a CSN, not a time
		{"2026-12-02T06:35:17Z", time.Time{}, true},
	} {
		got, err := parseLDAPTime(tt.in)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("parseLDAPTime(%q) = %v, %v", tt.in, got, err)
		}
	}
	if got, err := csnTime("20261202063517.755160Z#000000#000#000000"); err != nil ||
		!got.Equal(time.Date(2026, 12, 2, 6, 35, 17, 755160000, time.UTC)) {
		t.Errorf("csnTime = %v, %v", got, err)
	}
}

// TestLink: down keeps the first loss's time and the latest reason; up
// clears it; LinkOf looks through a wrapper.
func TestLink(t *testing.T) {
	var l link
	l.down(errors.New("first"))
	first := l.state()
	time.Sleep(time.Millisecond)
	l.down(errors.New("second"))
	if st := l.state(); !st.Down || !st.Since.Equal(first.Since) || st.Err != "second" {
		t.Errorf("after two losses: %+v (first %+v)", st, first)
	}
	l.up()
	if st := l.state(); st != (LinkState{}) {
		t.Errorf("after up: %+v", st)
	}
	ds := &DirSync{}
	ds.link.down(errors.New("gone"))
	if st, ok := LinkOf(wrapped{ds}); !ok || !st.Down || st.Err != "gone" {
		t.Errorf("LinkOf through a wrapper: %+v, %v", st, ok)
	}
}

type wrapped struct{ Source }

func (w wrapped) Unwrap() Source { return w.Source }

// TestLagUnsupported: an LDIF file and a DirSync source tell no lag
// (ErrLagUnsupported, without dialing for MeasureLag); an LDIF file
// reports no link.
func TestLagUnsupported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.ldif")
	if err := os.WriteFile(path, []byte("dn: uid=a,dc=x\nuid: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenLDIFFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := LagOf(context.Background(), wrapped{src}, "ldif:0"); !errors.Is(err, ErrLagUnsupported) {
		t.Errorf("LDIF LagOf: %v", err)
	}
	if _, ok := LinkOf(src); ok {
		t.Error("an LDIF file reports a link")
	}
	if _, err := LagOf(context.Background(), &DirSync{}, "dirsync:"); !errors.Is(err, ErrLagUnsupported) {
		t.Errorf("DirSync LagOf: %v", err)
	}
	for _, kind := range []string{"dirsync", "ldif"} {
		cfg := lang.SourceConfig{Kind: kind, URLs: []string{"ldap://192.0.2.1:1"}}
		if _, err := MeasureLag(context.Background(), cfg, "", Options{}); !errors.Is(err, ErrLagUnsupported) {
			t.Errorf("%s: MeasureLag = %v, want ErrLagUnsupported", kind, err)
		}
	}
}

// TestLagMeterCache: a meter measures at most once per its period,
// whatever the position asked, and again once the period is over.
func TestLagMeterCache(t *testing.T) {
	d, err := newDialer(lang.SourceConfig{Kind: "changelog", URLs: []string{"ldap://127.0.0.1:1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &lagMeter{d: d, every: time.Hour, measure: func(*ldap.Conn, string, time.Time) (Lag, error) {
		t.Fatal("measured on a connection that cannot exist")
		return Lag{}, nil
	}}
	// nothing listens on port 1: the dial fails, and the failure is cached
	_, err1 := m.lagAt(context.Background(), "changelog:1")
	at := m.at
	_, err2 := m.lagAt(context.Background(), "changelog:2")
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() || !m.at.Equal(at) {
		t.Fatalf("second ask within the period was measured again: %v / %v", err1, err2)
	}
	m.every = time.Nanosecond
	time.Sleep(time.Millisecond)
	if _, err := m.lagAt(context.Background(), "changelog:2"); err == nil || m.at.Equal(at) {
		t.Errorf("ask after the period was not measured again: %v", err)
	}
}
