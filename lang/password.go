package lang

import (
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/scimsync/scimsync/engine/scim"
)

// A directory keeps passwords in a stored form: userPassword as
// {SCHEME}data (RFC 2307 §5.3, and every {SSHA}, {PBKDF2-SHA512}, {CRYPT},
// {ARGON2}… scheme OpenLDAP and 389-ds add), authPassword as
// scheme$authInfo$authValue (RFC 3112). SCIM's password attribute is the
// clear-text password (RFC 7643 §4.1.1): a service given a stored form takes
// the hash itself as the new password, and the user can no longer log in
// with theirs. So a stored form is never sent as password.

// isPasswordTarget reports whether a target is the User's clear-text
// password attribute.
func isPasswordTarget(p scim.Path) bool {
	return strings.EqualFold(p.Attr, "password") && p.Sub == "" && len(p.Filter) == 0 &&
		(p.URN == "" || strings.EqualFold(p.URN, scim.URNUser))
}

// hashedPasswordMsg is the error for a stored password value. It names no
// part of the value, not even the scheme.
const hashedPasswordMsg = "the value is a stored password hash ({SCHEME}… form, RFC 2307/3112), " +
	"not a clear-text password; it is never sent as password, since the service would take the hash " +
	"itself as the password (map a clear-text source, such as 389-ds's unhashed#user#password, or leave password out)"

// isHashedPassword reports whether s is in a directory's stored password
// form:
//
//   - {SCHEME}data, the scheme 1 to 64 letters, digits or . _ + -, data not
//     empty: {SSHA}…, {PBKDF2-SHA512}…, {CRYPT}$6$…, {CLEAR}… as well (a
//     directory's own prefix, not the password);
//   - RFC 3112 scheme$authInfo$authValue, where the scheme (upper-case
//     letters, digits, - . / _) names a hash family (MD5, SHA…, PBKDF2…,
//     SCRAM…, CRYPT, ARGON…) and authValue is base64 of at least 16 bytes,
//     the size of the shortest digest. A clear-text password with two $
//     signs ("P$ss$1") is none of these.
func isHashedPassword(s string) bool {
	if len(s) > 2 && s[0] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 2 || end > 65 || end == len(s)-1 {
			return false
		}
		for i := 1; i < end; i++ {
			c := s[i]
			if !(isAlnum(c) || c == '.' || c == '_' || c == '+' || c == '-') {
				return false
			}
		}
		return true
	}
	parts := strings.Split(strings.TrimSpace(s), "$")
	if len(parts) != 3 {
		return false
	}
	scheme, value := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[2])
	if len(scheme) == 0 || len(scheme) > 64 {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '/' || c == '_') {
			return false
		}
	}
	family := false
	for _, f := range []string{"MD5", "SHA", "PBKDF2", "SCRAM", "CRYPT", "ARGON"} {
		family = family || strings.Contains(scheme, f)
	}
	if !family || len(value) < 22 { // 16 bytes are 22 base64 characters
		return false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !(isAlnum(c) || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// hashAttributes hold only stored password forms: a mapping that passes
// their values through can only give hashes. (userPassword may hold clear
// text on a directory that does not hash, but none should; 389-ds's
// unhashed#user#password and clearPassword are clear text and not here.)
var hashAttributes = map[string]bool{
	"userpassword": true, "authpassword": true, "sambantpassword": true, "sambalmpassword": true,
}

// passwordKind classifies what an expression can give, for the password
// warning: only values of a hash attribute, only "no value", or anything.
type passwordKind uint8

const (
	pwOther passwordKind = iota // may give clear text
	pwEmpty                     // nil or "": no value
	pwHash                      // a hash attribute's values, untransformed
)

// hashOnly reports whether a password mapping's expression can only give
// values of a hash attribute, passed through as they are, or no value:
// userPassword, first(userPassword), userPassword[0], last(…), trim(…),
// first(userPassword) ?? "", cond ? first(userPassword) : nil. Anything
// else (a function that transforms, another attribute, a literal) may be
// clear text, and is left to the check at run time.
func hashOnly(n ast.Node) (attr string, ok bool) {
	k, attr := passwordValues(n)
	return attr, k == pwHash
}

func passwordValues(n ast.Node) (passwordKind, string) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		if hashAttributes[x.Value] {
			return pwHash, x.Value
		}
	case *ast.NilNode:
		return pwEmpty, ""
	case *ast.StringNode:
		if x.Value == "" {
			return pwEmpty, ""
		}
	case *ast.ChainNode:
		return passwordValues(x.Node)
	case *ast.MemberNode:
		if _, isIndex := x.Property.(*ast.IntegerNode); isIndex {
			return passwordValues(x.Node)
		}
	case *ast.CallNode:
		if isCallOf(x, chargeFunc) { // the budget's wrapper (budget.go) passes its value through
			return passwordValues(x.Arguments[1])
		}
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && len(x.Arguments) == 1 && passThrough[id.Value] {
			return passwordValues(x.Arguments[0])
		}
	case *ast.BuiltinNode:
		if len(x.Arguments) == 1 && passThrough[x.Name] {
			return passwordValues(x.Arguments[0])
		}
	case *ast.BinaryNode:
		if x.Operator == "??" {
			return combinePassword(x.Left, x.Right)
		}
	case *ast.ConditionalNode:
		return combinePassword(x.Exp1, x.Exp2)
	}
	return pwOther, ""
}

// passThrough are the functions that keep a stored password's form.
var passThrough = map[string]bool{"first": true, "last": true, "trim": true}

func combinePassword(a, b ast.Node) (passwordKind, string) {
	ka, attr := passwordValues(a)
	kb, attrB := passwordValues(b)
	if attr == "" {
		attr = attrB
	}
	switch {
	case ka == pwOther || kb == pwOther:
		return pwOther, ""
	case ka == pwHash || kb == pwHash:
		return pwHash, attr
	}
	return pwEmpty, ""
}
