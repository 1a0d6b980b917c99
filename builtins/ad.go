package builtins

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// uacFlagNames are the userAccountControl flags documented by Microsoft
// ("Use the UserAccountControl flags to manipulate user account properties",
// https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/useraccountcontrol-manipulate-account-properties),
// in bit order.
var uacFlagNames = []struct {
	bit  uint32
	name string
}{
	{0x0001, "SCRIPT"},
	{0x0002, "ACCOUNTDISABLE"},
	{0x0008, "HOMEDIR_REQUIRED"},
	{0x0010, "LOCKOUT"},
	{0x0020, "PASSWD_NOTREQD"},
	{0x0040, "PASSWD_CANT_CHANGE"},
	{0x0080, "ENCRYPTED_TEXT_PWD_ALLOWED"},
	{0x0100, "TEMP_DUPLICATE_ACCOUNT"},
	{0x0200, "NORMAL_ACCOUNT"},
	{0x0800, "INTERDOMAIN_TRUST_ACCOUNT"},
	{0x1000, "WORKSTATION_TRUST_ACCOUNT"},
	{0x2000, "SERVER_TRUST_ACCOUNT"},
	{0x10000, "DONT_EXPIRE_PASSWORD"},
	{0x20000, "MNS_LOGON_ACCOUNT"},
	{0x40000, "SMARTCARD_REQUIRED"},
	{0x80000, "TRUSTED_FOR_DELEGATION"},
	{0x100000, "NOT_DELEGATED"},
	{0x200000, "USE_DES_KEY_ONLY"},
	{0x400000, "DONT_REQ_PREAUTH"},
	{0x800000, "PASSWORD_EXPIRED"},
	{0x1000000, "TRUSTED_TO_AUTH_FOR_DELEGATION"},
	{0x04000000, "PARTIAL_SECRETS_ACCOUNT"},
}

const uacAccountDisable = 0x0002

const hexDigits = "0123456789abcdef"

var adFuncs = []*Func{
	{
		Name:   "uacDisabled",
		Family: "ad",
		Sig:    []any{new(func([]string) bool), new(func(string) bool)},
		Fn:     uacDisabled,
		Doc: "uacDisabled reports whether the ACCOUNTDISABLE bit (0x2) is set in an Active Directory " +
			"userAccountControl value, a decimal string or a list whose first value is used; SCIM's " +
			"active is usually !uacDisabled(userAccountControl). uacDisabled(nil) is false; a value " +
			"that is not a 32-bit integer is an error.",
		Examples: []Example{
			{Expr: `uacDisabled(userAccountControl)`, Attrs: map[string][]string{"userAccountControl": {"514"}}, Want: true},
			{Expr: `!uacDisabled(userAccountControl)`, Attrs: map[string][]string{"userAccountControl": {"66048"}}, Want: true},
			{Expr: `uacDisabled(userAccountControl)`, Attrs: map[string][]string{"userAccountControl": nil}, Want: false},
			{Expr: `uacDisabled("disabled")`, Err: `uacDisabled: invalid userAccountControl "disabled"`},
		},
	},
	{
		Name:   "uacFlags",
		Family: "ad",
		Sig:    []any{new(func([]string) []string), new(func(string) []string)},
		Fn:     uacFlags,
		Doc: "uacFlags returns the names of the flags set in an Active Directory userAccountControl value " +
			"(a decimal string or a list whose first value is used), in bit order, as Microsoft documents " +
			"them: SCRIPT, ACCOUNTDISABLE, HOMEDIR_REQUIRED, LOCKOUT, PASSWD_NOTREQD, PASSWD_CANT_CHANGE, " +
			"ENCRYPTED_TEXT_PWD_ALLOWED, TEMP_DUPLICATE_ACCOUNT, NORMAL_ACCOUNT, INTERDOMAIN_TRUST_ACCOUNT, " +
			"WORKSTATION_TRUST_ACCOUNT, SERVER_TRUST_ACCOUNT, DONT_EXPIRE_PASSWORD, MNS_LOGON_ACCOUNT, " +
			"SMARTCARD_REQUIRED, TRUSTED_FOR_DELEGATION, NOT_DELEGATED, USE_DES_KEY_ONLY, DONT_REQ_PREAUTH, " +
			"PASSWORD_EXPIRED, TRUSTED_TO_AUTH_FOR_DELEGATION and PARTIAL_SECRETS_ACCOUNT; an undocumented " +
			"bit is named by its hexadecimal value, such as 0x00000004. AD computes LOCKOUT and " +
			"PASSWORD_EXPIRED in msDS-User-Account-Control-Computed rather than storing them here. " +
			"uacFlags(nil) is an empty list.",
		Examples: []Example{
			{Expr: `uacFlags(userAccountControl)`, Attrs: map[string][]string{"userAccountControl": {"66050"}}, Want: []string{"ACCOUNTDISABLE", "NORMAL_ACCOUNT", "DONT_EXPIRE_PASSWORD"}},
			{Expr: `"DONT_EXPIRE_PASSWORD" in uacFlags("66048")`, Want: true},
			{Expr: `uacFlags(userAccountControl)`, Attrs: map[string][]string{"userAccountControl": nil}, Want: []string{}},
		},
	},
	{
		Name:   "guidToString",
		Family: "ad",
		Sig:    []any{new(func([]string) string), new(func(string) string), new(func([]byte) string)},
		Fn:     guidToString,
		Doc: "guidToString formats a 16-byte binary GUID, such as Active Directory's objectGUID, as " +
			"lowercase xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in Microsoft's mixed-endian layout: the " +
			"first three groups are little-endian, the last two are the bytes in order. It accepts the " +
			"raw bytes as a string, a list (first value) or bytes (b\"...\"). guidToString(nil) is nil; " +
			"a value that is not 16 bytes long is an error. Note that \"\\x..\" escapes in expr string " +
			"literals produce Unicode characters, not bytes: write byte literals as b\"\\x..\".",
		Examples: []Example{
			{Expr: `guidToString(objectGUID)`, Attrs: map[string][]string{"objectGUID": {"\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb\xcc\xdd\xee\xff"}}, Want: "00112233-4455-6677-8899-aabbccddeeff"},
			{Expr: `guidToString(b"\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xAA\xBB\xCC\xDD\xEE\xFF")`, Want: "00112233-4455-6677-8899-aabbccddeeff"},
			{Expr: `guidToString(objectGUID)`, Attrs: map[string][]string{"objectGUID": nil}, Want: nil},
			{Expr: `guidToString("0011")`, Err: "guidToString: want 16 bytes, got 4"},
		},
	},
	{
		Name:   "sidToString",
		Family: "ad",
		Sig:    []any{new(func([]string) string), new(func(string) string), new(func([]byte) string)},
		Fn:     sidToString,
		Doc: "sidToString formats a binary security identifier, such as Active Directory's objectSid, " +
			"in the string form S-1-5-21-... (MS-DTYP §2.4.2): revision, identifier authority (in " +
			"hexadecimal if it does not fit 32 bits) and the little-endian sub-authorities. It accepts " +
			"the raw bytes as a string, a list (first value) or bytes (b\"...\"). sidToString(nil) is nil; " +
			"malformed bytes are an error.",
		Examples: []Example{
			{Expr: `sidToString(objectSid)`, Attrs: map[string][]string{"objectSid": {"\x01\x05\x00\x00\x00\x00\x00\x05\x15\x00\x00\x00\x15\xcd\x5b\x07\x00\x00\x00\x10\x00\x00\x00\x20\xe8\x03\x00\x00"}}, Want: "S-1-5-21-123456789-268435456-536870912-1000"},
			{Expr: `sidToString(b"\x01\x01\x00\x00\x00\x00\x00\x05\x12\x00\x00\x00")`, Want: "S-1-5-18"},
			{Expr: `sidToString(objectSid)`, Attrs: map[string][]string{"objectSid": nil}, Want: nil},
			{Expr: `sidToString(b"\x01\x05\x00")`, Err: "sidToString: malformed SID"},
		},
	},
}

// uac parses a userAccountControl value. AD stores it as a signed 32-bit
// INTEGER, so negative values are the same bits as large unsigned ones.
func uac(fn string, v any) (flags uint32, ok bool, err error) {
	s, ok, err := single(fn, v)
	if !ok {
		return 0, false, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1<<31 || n > 1<<32-1 {
		return 0, false, fmt.Errorf("%s: invalid userAccountControl %q: want a 32-bit decimal integer", fn, s)
	}
	return uint32(n), true, nil
}

func uacDisabled(args ...any) (any, error) {
	if err := arity("uacDisabled", args, 1); err != nil {
		return nil, err
	}
	flags, _, err := uac("uacDisabled", args[0])
	if err != nil {
		return false, err
	}
	return flags&uacAccountDisable != 0, nil
}

func uacFlags(args ...any) (any, error) {
	if err := arity("uacFlags", args, 1); err != nil {
		return nil, err
	}
	flags, _, err := uac("uacFlags", args[0])
	if err != nil {
		return nil, err
	}
	out := []string{}
	for bit := uint32(1); bit != 0; bit <<= 1 {
		if flags&bit == 0 {
			continue
		}
		name := fmt.Sprintf("0x%08X", bit)
		for _, f := range uacFlagNames {
			if f.bit == bit {
				name = f.name
				break
			}
		}
		out = append(out, name)
	}
	return out, nil
}

func guidToString(args ...any) (any, error) {
	if err := arity("guidToString", args, 1); err != nil {
		return nil, err
	}
	b, ok, err := single("guidToString", args[0])
	if !ok {
		return nil, err
	}
	if len(b) != 16 {
		return nil, fmt.Errorf("guidToString: want 16 bytes, got %d", len(b))
	}
	// Data1 (4 bytes), Data2 and Data3 (2 bytes each) are little-endian;
	// Data4 (8 bytes) is a byte array.
	var buf [36]byte
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	j := 0
	for i, k := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexDigits[b[k]>>4], hexDigits[b[k]&0xf]
		j += 2
	}
	return string(buf[:]), nil
}

func sidToString(args ...any) (any, error) {
	if err := arity("sidToString", args, 1); err != nil {
		return nil, err
	}
	b, ok, err := single("sidToString", args[0])
	if !ok {
		return nil, err
	}
	// Revision (1), SubAuthorityCount (1), IdentifierAuthority (6, big-endian),
	// SubAuthority (4 each, little-endian).
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return nil, fmt.Errorf("sidToString: malformed SID: %d bytes", len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("sidToString: malformed SID: revision %d", b[0])
	}
	var auth uint64
	for _, c := range []byte(b[2:8]) {
		auth = auth<<8 | uint64(c)
	}
	out := make([]byte, 0, 16+11*int(b[1]))
	out = append(out, "S-1-"...)
	if auth >= 1<<32 {
		out = fmt.Appendf(out, "0x%012X", auth)
	} else {
		out = strconv.AppendUint(out, auth, 10)
	}
	for i := 8; i < len(b); i += 4 {
		out = append(out, '-')
		out = strconv.AppendUint(out, uint64(binary.LittleEndian.Uint32([]byte(b[i:i+4]))), 10)
	}
	return string(out), nil
}
