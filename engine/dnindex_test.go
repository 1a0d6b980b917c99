package engine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
)

// twoMaps is run's DN index as it was before dnIndex: the model dnIndex
// must answer exactly as (Runner.index, unindex, the byRaw writes and the
// resolver's two lookups, verbatim).
type twoMaps struct {
	byDN  map[string]dnRef
	byRaw map[string]dnRef
	live  map[string]int
}

func newTwoMaps() *twoMaps {
	return &twoMaps{byDN: map[string]dnRef{}, byRaw: map[string]dnRef{}, live: map[string]int{}}
}

func (m *twoMaps) add(dn string, ref dnRef) {
	n := source.NormalizeDN(dn)
	if old, ok := m.byDN[n]; ok {
		m.unlive(old.id)
	}
	m.byDN[n] = ref
	m.live[ref.id]++
	m.byRaw[strings.ToLower(dn)] = ref
}

func (m *twoMaps) remove(dn string) {
	n := source.NormalizeDN(dn)
	if old, ok := m.byDN[n]; ok {
		m.unlive(old.id)
		delete(m.byDN, n)
	}
	delete(m.byRaw, strings.ToLower(dn))
}

func (m *twoMaps) unlive(id string) {
	if m.live[id]--; m.live[id] <= 0 {
		delete(m.live, id)
	}
}

func (m *twoMaps) lookup(dn string) (dnRef, bool) {
	if ref, ok := m.byRaw[strings.ToLower(dn)]; ok {
		return ref, true
	}
	ref, ok := m.byDN[source.NormalizeDN(dn)]
	return ref, ok
}

// indexDNs are DNs that meet each other in every way the two maps tell
// apart: case (ASCII and not), spaces around separators, escapes, the
// order of a multi-valued RDN, a string that does not parse, plain and
// not.
var indexDNs = []string{
	"uid=a,ou=People,dc=x", "UID=A,OU=people,DC=X", "uid=a, ou=People, dc=x", " uid=a,ou=People,dc=x ",
	"uid=b,ou=People,dc=x", "uid=b,ou=people,dc=x", "uid=B,ou=People,dc=x",
	"cn=Émile Zola,dc=x", "cn=émile zola,dc=x", "cn=\\c3\\89mile Zola,dc=x",
	"cn=a\\,b,dc=x", "cn=a\\2cb,dc=x", "cn=A\\2Cb,dc=x",
	"cn=a+sn=b,dc=x", "sn=b+cn=a,dc=x", "SN=B + CN=A,DC=X",
	"cn=John Smith,ou=Staff,dc=x", "cn=john smith,ou=staff,dc=x", "cn=John  Smith,ou=Staff,dc=x",
	"not a dn", "NOT A DN", "",
	"uid=jo@example.org,dc=x", "uid=jo_1,dc=x", "2.5.4.3=x,dc=y",
}

// TestDNIndexAnswersAsTwoMaps: over random adds and removes of DNs that
// differ in every way that matters, dnIndex answers every lookup, alive
// and count exactly as the two maps it replaces, and frees what no key
// names any more.
func TestDNIndexAnswersAsTwoMaps(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 15))
			x, m := newDNIndex(), newTwoMaps()
			ids := []string{"s1", "s2", "s3", "s4", "s5"}
			eps := []string{"users", "groups"}
			for step := range 600 {
				dn := indexDNs[rng.IntN(len(indexDNs))]
				op := "add"
				if rng.IntN(3) == 0 {
					op = "remove"
					x.remove(dn)
					m.remove(dn)
				} else {
					ref := dnRef{endpoint: eps[rng.IntN(len(eps))], id: ids[rng.IntN(len(ids))]}
					x.add(dn, ref)
					m.add(dn, ref)
				}
				where := fmt.Sprintf("step %d (%s %q)", step, op, dn)
				for _, q := range indexDNs {
					got, gok := x.lookup(q)
					want, wok := m.lookup(q)
					if got != want || gok != wok {
						t.Fatalf("%s: lookup(%q) = %v %v, the two maps say %v %v", where, q, got, gok, want, wok)
					}
				}
				for _, id := range ids {
					if got, want := x.alive(id), m.live[id] > 0; got != want {
						t.Fatalf("%s: alive(%s) = %v, want %v", where, id, got, want)
					}
				}
				if x.count() != len(m.byDN) {
					t.Fatalf("%s: %d normalized DNs, want %d", where, x.count(), len(m.byDN))
				}
				var got, want []string
				x.each(func(r dnRef) { got = append(got, r.endpoint+"/"+r.id) })
				for _, r := range m.byDN {
					want = append(want, r.endpoint+"/"+r.id)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: each %v, want %v", where, got, want)
				}
				uses := 0
				for _, k := range x.keys {
					uses += min(int(k.norm), 1) + min(int(k.raw), 1)
				}
				held := 0
				for _, e := range x.refs[1:] {
					held += int(e.uses)
				}
				if uses != held || len(x.refs)-1-len(x.free) > len(m.byDN)+len(m.byRaw) {
					t.Fatalf("%s: %d key uses, %d counted; %d slots held for %d keys", where, uses, held,
						len(x.refs)-1-len(x.free), len(m.byDN)+len(m.byRaw))
				}
			}
		})
	}
}

// TestPlainDN: which DNs the index keys without parsing.
func TestPlainDN(t *testing.T) {
	tests := []struct {
		dn    string
		plain bool
	}{
		{"uid=bench-u000001,ou=People,dc=example,dc=org", true},
		{"CN=John Smith,OU=Staff,DC=corp,DC=example", true},
		{"uid=jo@example.org,dc=x", true},
		{"2.5.4.3=x,dc=y", true},
		{"uid=a", true},
		{"", false},
		{"uid=a, ou=x", false},         // a space before a type
		{"uid= a,ou=x", false},         // a value's leading space
		{"uid=a ,ou=x", false},         // and trailing
		{"uid =a,ou=x", false},         // a space in a type
		{"uid=,ou=x", false},           // an empty value
		{"=a,ou=x", false},             // no type
		{"uid=a,,ou=x", false},         // an empty part
		{"uid=a,ou=x,", false},         // a trailing comma
		{"uid=a=b,ou=x", false},        // a second '='
		{"cn=a\\,b,dc=x", false},       // an escape
		{"cn=a+sn=b,dc=x", false},      // a multi-valued RDN
		{"cn=Émile,dc=x", false},       // not ASCII
		{"cn=#04024869,dc=x", false},   // a BER value
		{"cn=a;dc=x", false},           // the other separator
		{"cn=\"quoted\",dc=x", false},  // quotes
		{"u_id=a,dc=x", false},         // '_' in a type
		{"not a dn", false},            // no '='
		{"cn=John  Smith,dc=x", true},  // inner spaces are kept as they are
		{"cn=a\tb,dc=x", false},        // a control character
		{"cn=a<b,dc=x", false},         // a character to escape
		{"dc=x,cn=john.smith-2", true}, // '.' and '-' anywhere
	}
	for _, tt := range tests {
		t.Run(tt.dn, func(t *testing.T) {
			if got := plainDN(tt.dn); got != tt.plain {
				t.Errorf("plainDN(%q) = %v, want %v", tt.dn, got, tt.plain)
			}
			if tt.plain && source.NormalizeDN(tt.dn) != strings.ToLower(tt.dn) {
				t.Errorf("NormalizeDN(%q) = %q, not the DN lower-cased", tt.dn, source.NormalizeDN(tt.dn))
			}
		})
	}
}

// FuzzPlainDN: a DN plainDN calls plain is one NormalizeDN maps to the DN
// lower-cased, whatever it is, and the key made from its bytes is the key
// of that string.
func FuzzPlainDN(f *testing.F) {
	for _, dn := range indexDNs {
		f.Add(dn)
	}
	f.Add("uid=bench-u000001,ou=People,dc=example,dc=org")
	f.Fuzz(func(t *testing.T, dn string) {
		raw, plain := rawKey(dn)
		if raw != hashKey(strings.ToLower(dn)) {
			t.Fatalf("rawKey(%q) is not the key of %q", dn, strings.ToLower(dn))
		}
		if plain != plainDN(dn) && len(dn) <= 256 {
			t.Fatalf("rawKey(%q) says plain %v", dn, plain)
		}
		if plain && source.NormalizeDN(dn) != strings.ToLower(dn) {
			t.Fatalf("plain %q normalizes to %q", dn, source.NormalizeDN(dn))
		}
	})
}

// residentKiB returns how much of the file path is resident in this
// process through its mappings (the Rss of its lines in /proc/self/smaps).
func residentKiB(t testing.TB, path string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	var kib int64
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[len(f)-1] == path
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			kib += n
		}
	}
	return kib
}

// TestLoadIndexLeavesTheFileOut: run's start reads the whole id map to
// index it, and leaves next to none of the state file resident in the
// process afterwards (it was all of it: 45 MiB at 100 000 mappings); the
// index answers for every entry.
func TestLoadIndexLeavesTheFileOut(t *testing.T) {
	st, err := state.Open(t.TempDir(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 40000
	if err := st.Update(func(tx *state.Tx) error {
		for i := range n {
			id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
			if err := tx.Put(id, state.Mapping{Endpoint: "users", SCIMID: "s-" + id, DN: fmt.Sprintf("uid=u%06d,ou=People,dc=example,dc=org", i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Store: st}
	if err := r.loadIndex(); err != nil {
		t.Fatal(err)
	}
	kib := residentKiB(t, st.Path())
	t.Logf("resident through the map after loadIndex: %d KiB", kib)
	if kib > 256 {
		t.Errorf("%d KiB of the state file stay resident after loadIndex", kib)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
		if ref, ok := r.dns.lookup(fmt.Sprintf("UID=u%06d, ou=people,dc=example,dc=org", i)); !ok || ref.id != "s-"+id || ref.endpoint != "users" {
			t.Errorf("entry %d: %+v %v", i, ref, ok)
		}
	}
	if r.dns.count() != n {
		t.Errorf("%d DNs indexed, want %d", r.dns.count(), n)
	}
}
