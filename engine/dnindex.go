package engine

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"github.com/scimsync/scimsync/engine/source"
)

// dnIndex is run's index of the id map by DN: the resource (endpoint and
// SCIM id) each DN the id map knows became, so that a reference to an
// entry already synchronized resolves without asking the directory or the
// service. It answers exactly as two maps would: one keyed by the
// normalized DN (source.NormalizeDN: parsed, so spacing and escaping do
// not matter) and one keyed by the DN lower-cased as it was last seen (a
// fast path that needs no parsing, and that also matches a DN differing
// only in the case of non-ASCII letters, which NormalizeDN keeps apart);
// and it counts, per SCIM id, how many normalized DNs name it (alive).
//
// It is built to be small, as it holds every entry of the id map for the
// life of `run` (100 000s in a real directory; at 100 000 the two string
// maps it replaces held 31 of run's 33 MB of live heap, about 310 bytes an
// entry, and the heap grew to twice that between collections):
//
//   - One map for both, keyed by a 128-bit hash of the key string, not
//     the string: a DN in plain form ("uid=jo,ou=People,dc=example,dc=org":
//     letters, digits, a few marks, no escapes, no spaces around the
//     separators) has the same normalized and lower-cased form, so both
//     of its keys are one map entry. Its value names the resource of
//     each key, by number.
//   - The resources in one slice, each once, with its SCIM id (the string
//     read from the id map, not a copy), its endpoint as a number into the
//     few endpoint names, and how many keys name it; the slots of those no
//     key names any more are reused.
//   - Plain DNs are hashed lower-cased from the string itself, without
//     parsing and without a lower-cased copy (rawKey): NormalizeDN parsed
//     every DN, 77 MB of garbage when the index was built over 100 000.
//
// The hash is hash/maphash, 2 × 64 bits with seeds drawn for each process:
// two different key strings share a hash with a probability of about n² /
// 2¹²⁹ (10⁻²⁹ at 100 000 entries), and as the seeds are drawn at random
// in each process, which DNs would collide cannot be known beforehand, so
// not chosen either (maphash is built against hash flooding; it is not a
// cryptographic hash, and need not be here). Its methods are not safe for
// concurrent use (Runner.mu guards it). Its reads answer on a nil index
// as on an empty one, as the maps did before a run loaded them.
type dnIndex struct {
	keys        map[dnKey]keyRefs
	refs        []dnEntry // refs[0] is unused: 0 is "none" in keyRefs
	free        []uint32  // slots of refs no key names
	live        map[string]int32
	endpoints   []string          // the endpoint names, by number
	endpointNum map[string]uint16 // and their numbers
	normalized  int               // how many keys have a normalized-DN resource
}

// The seeds of the keys' hash.
var dnSeed0, dnSeed1 = maphash.MakeSeed(), maphash.MakeSeed()

// dnKey is the hash of a key string.
type dnKey [2]uint64

// keyRefs are the resources (slots in refs, 0 for none) of one key
// string as a normalized DN and as a lower-cased DN.
type keyRefs struct{ norm, raw uint32 }

// dnEntry is one resource of the index.
type dnEntry struct {
	id       string
	endpoint uint16
	uses     uint16 // how many keys name it; 0: a free slot
}

func newDNIndex() *dnIndex {
	return &dnIndex{keys: map[dnKey]keyRefs{},
		refs: make([]dnEntry, 1), live: map[string]int32{}, endpointNum: map[string]uint16{}}
}

// hashKey returns the key of a string already in key form.
func hashKey(s string) dnKey {
	return dnKey{maphash.String(dnSeed0, s), maphash.String(dnSeed1, s)}
}

// dnKeys returns the keys of dn as a normalized DN and as a lower-cased
// DN: the same key when dn is plain.
func dnKeys(dn string) (norm, raw dnKey) {
	raw, plain := rawKey(dn)
	if plain {
		return raw, raw
	}
	return normKey(dn), raw
}

// normKey returns the key of source.NormalizeDN(dn).
func normKey(dn string) dnKey { return hashKey(source.NormalizeDN(dn)) }

// rawKey returns the key of strings.ToLower(dn), and whether dn is plain
// (plainDN: its normalized form is that same string, so that this is its
// normalized key too).
func rawKey(dn string) (dnKey, bool) {
	var buf [256]byte
	if len(dn) > len(buf) {
		return hashKey(strings.ToLower(dn)), false
	}
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		if c >= utf8.RuneSelf {
			return hashKey(strings.ToLower(dn)), false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	// maphash.Bytes of the bytes is maphash.String of the same string.
	b := buf[:len(dn)]
	return dnKey{maphash.Bytes(dnSeed0, b), maphash.Bytes(dnSeed1, b)}, plainDN(dn)
}

// plainDN reports whether source.NormalizeDN(dn) is strings.ToLower(dn),
// without parsing dn: each of its comma-separated parts is a type of
// letters, digits, '-' and '.', an '=', and a value of letters, digits,
// '-', '.', '_', '@' and inner spaces, not empty. Such a DN parses into
// exactly those parts, and encodes back (go-ldap's DN.String: the type
// lower-cased, nothing in the value escaped) to the same string, which
// NormalizeDN lower-cases. FuzzPlainDN holds the two to it.
func plainDN(dn string) bool {
	if dn == "" {
		return false
	}
	start, eq := 0, -1
	for i := 0; i <= len(dn); i++ {
		if i == len(dn) || dn[i] == ',' {
			if eq <= start || eq == i-1 || dn[eq+1] == ' ' || dn[i-1] == ' ' {
				return false // no type, no value, or a value with outer spaces
			}
			start, eq = i+1, -1
			continue
		}
		c := dn[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.':
		case c == '=':
			if eq >= 0 {
				return false // a second '=' in a part
			}
			eq = i
		case eq >= 0 && (c == '_' || c == '@' || c == ' '):
		default:
			return false
		}
	}
	return true
}

// endpoint returns the number of an endpoint name.
func (x *dnIndex) endpoint(name string) uint16 {
	if n, ok := x.endpointNum[name]; ok {
		return n
	}
	n := uint16(len(x.endpoints))
	x.endpoints = append(x.endpoints, name)
	x.endpointNum[name] = n
	return n
}

// add indexes dn as the DN of ref (both of its keys), as the two maps
// did: byDN[NormalizeDN(dn)] = ref; byRaw[strings.ToLower(dn)] = ref.
func (x *dnIndex) add(dn string, ref dnRef) {
	norm, raw := dnKeys(dn)
	slot := x.newRef(ref)
	k := x.keys[norm]
	if k.norm != 0 {
		x.unlive(x.refs[k.norm].id)
		x.release(k.norm)
	} else {
		x.normalized++
	}
	k.norm = slot
	x.refs[slot].uses++
	x.live[ref.id]++
	if raw == norm {
		if k.raw != 0 {
			x.release(k.raw)
		}
		k.raw = slot
		x.refs[slot].uses++
		x.keys[norm] = k
		return
	}
	x.keys[norm] = k
	r := x.keys[raw]
	if r.raw != 0 {
		x.release(r.raw)
	}
	r.raw = slot
	x.refs[slot].uses++
	x.keys[raw] = r
}

// remove forgets dn (both of its keys), as the two maps did:
// delete(byDN, NormalizeDN(dn)); delete(byRaw, strings.ToLower(dn)).
func (x *dnIndex) remove(dn string) {
	norm, raw := dnKeys(dn)
	if k, ok := x.keys[norm]; ok && k.norm != 0 {
		x.unlive(x.refs[k.norm].id)
		x.release(k.norm)
		x.normalized--
		k.norm = 0
		x.store(norm, k)
	}
	if k, ok := x.keys[raw]; ok && k.raw != 0 {
		x.release(k.raw)
		k.raw = 0
		x.store(raw, k)
	}
}

// lookup returns the resource of dn as the resolver asked the two maps:
// byRaw[strings.ToLower(dn)], else byDN[NormalizeDN(dn)].
func (x *dnIndex) lookup(dn string) (dnRef, bool) {
	raw, plain := rawKey(dn)
	if ref, ok := x.byRaw(raw); ok {
		return ref, true
	}
	norm := raw
	if !plain {
		norm = normKey(dn)
	}
	return x.byNorm(norm)
}

// byRaw returns the resource of a lower-cased DN's key (rawKey).
func (x *dnIndex) byRaw(raw dnKey) (dnRef, bool) {
	if x == nil {
		return dnRef{}, false
	}
	if k := x.keys[raw]; k.raw != 0 {
		return x.ref(k.raw), true
	}
	return dnRef{}, false
}

// byNorm returns the resource of a normalized DN's key (normKey).
func (x *dnIndex) byNorm(norm dnKey) (dnRef, bool) {
	if x == nil {
		return dnRef{}, false
	}
	if k := x.keys[norm]; k.norm != 0 {
		return x.ref(k.norm), true
	}
	return dnRef{}, false
}

// each calls fn with the resource of every normalized DN (byDN's values).
func (x *dnIndex) each(fn func(dnRef)) {
	if x == nil {
		return
	}
	for _, k := range x.keys {
		if k.norm != 0 {
			fn(x.ref(k.norm))
		}
	}
}

// alive reports whether a normalized DN names the SCIM id.
func (x *dnIndex) alive(id string) bool { return x != nil && x.live[id] > 0 }

// count returns how many normalized DNs are indexed (len(byDN)).
func (x *dnIndex) count() int {
	if x == nil {
		return 0
	}
	return x.normalized
}

func (x *dnIndex) ref(slot uint32) dnRef {
	e := &x.refs[slot]
	return dnRef{endpoint: x.endpoints[e.endpoint], id: e.id}
}

func (x *dnIndex) newRef(ref dnRef) uint32 {
	e := dnEntry{id: ref.id, endpoint: x.endpoint(ref.endpoint)}
	if n := len(x.free); n > 0 {
		slot := x.free[n-1]
		x.free = x.free[:n-1]
		x.refs[slot] = e
		return slot
	}
	x.refs = append(x.refs, e)
	return uint32(len(x.refs) - 1)
}

// release drops a key's use of a slot, freeing it when it was the last.
func (x *dnIndex) release(slot uint32) {
	if x.refs[slot].uses--; x.refs[slot].uses == 0 {
		x.refs[slot] = dnEntry{}
		x.free = append(x.free, slot)
	}
}

// store keeps k for key, or deletes key when it names nothing.
func (x *dnIndex) store(key dnKey, k keyRefs) {
	if k == (keyRefs{}) {
		delete(x.keys, key)
		return
	}
	x.keys[key] = k
}

func (x *dnIndex) unlive(id string) {
	if x.live[id]--; x.live[id] <= 0 {
		delete(x.live, id)
	}
}
