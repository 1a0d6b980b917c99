package lang

import (
	"strings"
)

// Password sync from the change.
//
// A directory keeps only hashes of passwords, so the clear text exists only
// at the moment of a change, and only where the source records it:
// Change.NewPassword, which expressions read as newPassword (nil when the
// change carries none). A pipe sends it with
//
//	@realtime password = newPassword
//
// and the rules are:
//
//   - it is sent on create (in the POST body, as any mapping) and on the
//     modify that carried it (PasswordChange: the destination adds a
//     "replace password" PATCH operation, since SCIM's password is
//     writeOnly and never returned, so a diff can never see it differ);
//   - never in resync: a resync reads entries, which hold only hashes, so
//     newPassword is nil there;
//   - never compared or diffed, and never shown: every expression that
//     reads newPassword is secret (its errors withheld), the value is among
//     Result.Secrets, and nothing in lang puts it in a string;
//   - scim { passwords = "skip" } leaves every password mapping out.

// newPasswordValue is newPassword as expressions see it: the clear text,
// or nil.
func newPasswordValue(ch *Change) any {
	if ch.NewPassword.IsZero() {
		return nil
	}
	return ch.NewPassword.Reveal()
}

// passwordChangeAttrs are the attributes under which a source reports a
// password change in Change.Changed (lower case): an expression reading
// newPassword reads them, so that Class.Reads lets such a modify through.
// 389-ds's changelog reports userPassword beside unhashed#user#password
// (which the changelog source names unhashed-user-password, LDIF not
// allowing #).
var passwordChangeAttrs = []string{"userpassword", "unhashed#user#password", "unhashed-user-password",
	"authpassword", "clearpassword", "ds-changelog-encrypted-password", "unicodepwd"}

// PasswordChange returns the password a realtime update must send with a
// "replace password" operation: the value of the class's password mapping
// when the change carries a new password (Change.NewPassword) and the
// mapping gives a clear-text string for the result's endpoint. ok is false
// when there is nothing to send: no new password, resync, no password
// mapping (or passwords = "skip", or the target excluded), an empty value.
// A stored hash ({SSHA}…) is an *EvalError, never sent.
func (r *Result) PasswordChange() (value string, ok bool, err error) {
	if r == nil || r.Mode != Realtime || r.Class == nil || r.Change == nil || r.Change.NewPassword.IsZero() {
		return "", false, nil
	}
	for i, m := range r.Class.Mappings {
		if !m.password || i >= len(r.values) || !m.Usage.Has(Update, Realtime) || !m.appliesTo(r.Endpoint) {
			continue
		}
		s, isString := r.values[i].(string)
		if !isString || s == "" {
			continue
		}
		if isHashedPassword(s) {
			return "", false, &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: hashedPasswordMsg}
		}
		return s, true, nil
	}
	return "", false, nil
}

// IsClearTextPassword reports whether a userPassword value is clear text:
// not empty and not in a stored form ({SCHEME}data, RFC 3112). OpenLDAP
// and LDIF sources use it: a site that stores clear text has the password
// at hand, a hashed value is never a password to send.
func IsClearTextPassword(v string) bool {
	return strings.TrimSpace(v) != "" && !isHashedPassword(v)
}

// passwordSourceChecks warns at load about password mappings a source can
// never feed: Active Directory's DirSync never returns passwords
// (unicodePwd is write-only, and DirSync reports only that it changed).
func (c *compiler) passwordSourceChecks() {
	if c.p.Source.Kind != "dirsync" {
		return
	}
	for _, cl := range c.p.Classes {
		for _, m := range cl.Mappings {
			if !m.password || m.prog == nil {
				continue
			}
			d := c.warnf(m.prog.text.off, len([]rune(m.prog.text.text)), "%s: source dirsync never carries a password: "+
				"Active Directory's DirSync does not return unicodePwd or any clear text, so newPassword is always nil "+
				"and no password is ever sent from this pipe", m.Target.String())
			d.Hint = "set passwords at the service another way, or leave password out"
		}
	}
}
