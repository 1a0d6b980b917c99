package source

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// Where a change's clear-text password comes from (lang.Change.NewPassword),
// per source. None of these values is ever logged, put in an error, or
// kept beyond the change: the state store holds only the change's position
// (PasswordReader reads it again for a retry).
//
//   - 389-ds Retro Changelog, with nsslapd-unhashed-pw-switch: on: the
//     changes attribute of a modify holds "replace: unhashed#user#password"
//     with the clear text. Seen on 389-ds 2.x for an LDAP modify of
//     userPassword with a clear value, and for the password modify extended
//     operation (ldappasswd; 389 accepts it only over LDAPI or TLS, which
//     also logs a separate modify of passwordgraceusertime). Not for an
//     add (the add's changes hold only the hashed userPassword), and not
//     for a modify that supplies an already hashed {SCHEME} value.
//   - PingDirectory: the changelog entry's ds-changelog-encrypted-password
//     (the Changelog Password Encryption plugin). Its format is not
//     publicly documented, so it is not decrypted: see
//     decryptPingPassword.
//   - OpenLDAP (syncrepl) and LDIF sources: a userPassword value that is
//     not in {SCHEME} form is clear text (lang.IsClearTextPassword); a
//     hashed one is never a password to send.
//   - Active Directory (DirSync): never; the pipe is warned at load.

// ErrPasswordGone is a password change whose record the source no longer
// holds (the changelog was trimmed): its password cannot be sent.
var ErrPasswordGone = errors.New("the change record that carried the new password is no longer in the source (the changelog was trimmed): " +
	"the password was not sent; set it at the service, or change it again in the directory")

// PasswordReader is a source that can read a change's new password again
// by the change's position (Event.Position): how a parked password change
// is retried without the state ever holding the clear text.
type PasswordReader interface {
	// PasswordAt returns the new password the change at position carried:
	// the zero Secret when it carried none, ErrPasswordGone when the
	// record is gone. The caller knows the change is its entry's: the
	// parked record that keeps the position is the entry's own.
	PasswordAt(ctx context.Context, position string) (secret.Secret, error)
}

var _ PasswordReader = (*Changelog)(nil)

// unhashedAttr is the name changedAttrs gives 389-ds's
// unhashed#user#password, which LDIF does not allow.
const unhashedAttr = "unhashed-user-password"

// changelogPassword returns the clear text a 389-ds changes value records
// as unhashed#user#password (the last value added or replaced), or the
// zero Secret. Errors say nothing of the value.
func changelogPassword(typ lang.ChangeType, changes []byte) (secret.Secret, error) {
	changes = bytes.TrimRight(changes, "\x00")
	if !unhashedPassword.Match(changes) {
		return secret.Secret{}, nil
	}
	changes = unhashedPassword.ReplaceAll(changes, []byte(unhashedAttr))
	var buf bytes.Buffer
	buf.WriteString("dn: cn=changes\n")
	if typ == lang.Modify {
		buf.WriteString("changetype: modify\n")
	}
	buf.Write(changes)
	buf.WriteByte('\n')
	rec, err := ldif.NewReader(&buf).Next()
	if err != nil {
		return secret.Secret{}, errors.New("the changes attribute is not valid LDIF: its new password cannot be read")
	}
	var pw string
	for _, m := range rec.Mods {
		if strings.EqualFold(m.Attr, unhashedAttr) && (m.Op == "replace" || m.Op == "add") && len(m.Values) > 0 {
			pw = m.Values[len(m.Values)-1]
		}
	}
	for _, a := range rec.Attrs {
		if strings.EqualFold(a.Name, unhashedAttr) && len(a.Values) > 0 {
			pw = a.Values[len(a.Values)-1]
		}
	}
	return secret.New(pw), nil
}

// ErrPasswordFormat is a PingDirectory encrypted changelog password that
// scimsync cannot decrypt.
var ErrPasswordFormat = errors.New("unsupported format: PingDirectory's ds-changelog-encrypted-password is encrypted " +
	"in a format Ping Identity does not document, so scimsync cannot decrypt it; the change is synced without its password")

// decryptPingPassword would decrypt PingDirectory's
// ds-changelog-encrypted-password with the source's passwordKey. The
// Changelog Password Encryption plugin's format (cipher, key derivation
// from the shared secret, framing of the value) is not public, and a guess
// would send garbage as a password, so it fails with ErrPasswordFormat
// whatever the input. What would close the gap: the format from Ping's
// documentation or SDK (the Server SDK's ChangelogPasswordEncryption
// classes), with test vectors from a PingDirectory that has the plugin on.
func decryptPingPassword(key secret.Secret, encrypted []byte) (secret.Secret, error) {
	if key.IsZero() {
		return secret.Secret{}, errors.New("the changelog carries an encrypted password (ds-changelog-encrypted-password) " +
			"but the source has no passwordKey: the change is synced without its password")
	}
	if len(encrypted) == 0 {
		return secret.Secret{}, nil
	}
	return secret.Secret{}, ErrPasswordFormat
}

// recordPassword returns the new password a changelog record carries, for
// the change it describes. Only modifies (and adds, should a server record
// one) carry one.
func (c *Changelog) recordPassword(r *ldap.Entry, typ lang.ChangeType) (secret.Secret, error) {
	if typ != lang.Modify && typ != lang.Add {
		return secret.Secret{}, nil
	}
	if enc := r.GetRawAttributeValue("ds-changelog-encrypted-password"); len(enc) > 0 {
		return decryptPingPassword(c.cfg.PasswordKey, enc)
	}
	return changelogPassword(typ, r.GetRawAttributeValue("changes"))
}

// PasswordAt reads the changelog entry at position again (on a connection
// of its own: the reader's belongs to Next) and returns the new password
// it carries.
func (c *Changelog) PasswordAt(ctx context.Context, position string) (secret.Secret, error) {
	rest, err := splitPosition("changelog", position)
	if err != nil {
		return secret.Secret{}, err
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 1 {
		return secret.Secret{}, fmt.Errorf("%w: %q is not a change number", ErrBadPosition, position)
	}
	conn, _, err := c.d.dial(ctx, c.d.timeout)
	if err != nil {
		return secret.Secret{}, err
	}
	defer conn.Close()
	res, err := conn.Search(ldap.NewSearchRequest(c.base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 1, 0, false,
		fmt.Sprintf("(changeNumber=%d)", n), changelogAttrs, nil))
	if err != nil && !isNoSuchObject(err) {
		return secret.Secret{}, fmt.Errorf("reading change %d again for its password: %s", n, ldapReason(err))
	}
	if res == nil || len(res.Entries) == 0 {
		return secret.Secret{}, ErrPasswordGone
	}
	r := res.Entries[0]
	rec, err := parseChangelogEntry(r)
	if err != nil {
		return secret.Secret{}, err
	}
	return c.recordPassword(r, rec.typ)
}

// passwordTracker tells, for sources that report whole entries without the
// changed attributes (syncrepl), whether an entry's clear-text userPassword
// changed: it keeps, per identity, an HMAC of the last value seen under a
// key made at random for this process, never the value, and nothing of it
// outlives the process.
type passwordTracker struct {
	mu   sync.Mutex
	key  []byte
	last map[string][]byte // identity -> HMAC of its clear-text userPassword; nil: none
}

func newPasswordTracker() *passwordTracker {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &passwordTracker{key: k, last: map[string][]byte{}}
}

// observe records an entry's userPassword values and returns the new
// password the change carries: the clear-text value, when it differs from
// the one last seen for id, or when id was never seen and the entry is new
// to the caller (isNew). An entry first seen after a restart that already
// existed is recorded without sending: syncrepl cannot say whether its
// password changed, and re-sending every password at each start would be
// a resync of passwords.
func (t *passwordTracker) observe(id string, values []string, isNew bool) secret.Secret {
	clear := ""
	for _, v := range values {
		if lang.IsClearTextPassword(v) {
			clear = v
			break
		}
	}
	var sum []byte
	if clear != "" {
		h := hmac.New(sha256.New, t.key)
		h.Write([]byte(clear))
		sum = h.Sum(nil)
	}
	t.mu.Lock()
	prev, seen := t.last[id]
	t.last[id] = sum
	t.mu.Unlock()
	if clear == "" || seen && hmac.Equal(prev, sum) || !seen && !isNew {
		return secret.Secret{}
	}
	return secret.New(clear)
}

// forget drops an identity (a delete).
func (t *passwordTracker) forget(id string) {
	t.mu.Lock()
	delete(t.last, id)
	t.mu.Unlock()
}

// entryPassword is the clear-text userPassword of an entry (LDIF sources),
// or the zero Secret.
func entryPassword(e *lang.Entry) secret.Secret {
	for _, v := range e.Get("userPassword") {
		if lang.IsClearTextPassword(v) {
			return secret.New(v)
		}
	}
	return secret.Secret{}
}

// modPassword is the clear-text userPassword an LDIF modify record adds or
// replaces, or the zero Secret.
func modPassword(mods []ldif.Mod) secret.Secret {
	pw := secret.Secret{}
	for _, m := range mods {
		if !strings.EqualFold(m.Attr, "userPassword") || m.Op != "add" && m.Op != "replace" {
			continue
		}
		for _, v := range m.Values {
			if lang.IsClearTextPassword(v) {
				pw = secret.New(v)
			}
		}
	}
	return pw
}

// contentPassword is the new password of an LDIF content record: the
// entry's clear-text userPassword on an add, and on a modify (a record
// restating an entry) only when userPassword is among the changed
// attributes.
func contentPassword(ch *lang.Change) secret.Secret {
	if ch.Type == lang.Modify && !slices.ContainsFunc(ch.Changed, func(a string) bool { return strings.EqualFold(a, "userPassword") }) {
		return secret.Secret{}
	}
	return entryPassword(ch.Entry)
}
