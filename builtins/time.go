package builtins

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var timeFuncs = []*Func{
	{
		Name:   "generalizedToRFC3339",
		Family: "time",
		Sig:    []any{new(func([]string) string), new(func(string) string)},
		Fn:     generalizedToRFC3339,
		Doc: "generalizedToRFC3339 converts an LDAP GeneralizedTime (RFC 4517 §3.3.13, as in " +
			"createTimestamp, modifyTimestamp or AD's whenChanged) to an RFC 3339 timestamp in UTC, " +
			"as SCIM's meta.lastModified wants. Minutes and seconds may be omitted, a fraction (after . " +
			"or ,) applies to the last unit given, and the zone is Z or an offset such as +0200, " +
			"which is converted to UTC; fractional seconds are kept without trailing zeros. It accepts a " +
			"string or a list, whose first value is used. generalizedToRFC3339(nil) is nil; anything " +
			"else that is not a GeneralizedTime is an error.",
		Examples: []Example{
			{Expr: `generalizedToRFC3339(modifyTimestamp)`, Attrs: map[string][]string{"modifyTimestamp": {"20240131235959Z"}}, Want: "2024-01-31T23:59:59Z"},
			{Expr: `generalizedToRFC3339("20240201015959.5+0200")`, Want: "2024-01-31T23:59:59.5Z"},
			{Expr: `generalizedToRFC3339("2024013123Z")`, Want: "2024-01-31T23:00:00Z"},
			{Expr: `generalizedToRFC3339(modifyTimestamp)`, Attrs: map[string][]string{"modifyTimestamp": nil}, Want: nil},
		},
	},
	{
		Name:   "rfc3339ToGeneralized",
		Family: "time",
		Sig:    []any{new(func([]string) string), new(func(string) string)},
		Fn:     rfc3339ToGeneralized,
		Doc: "rfc3339ToGeneralized converts an RFC 3339 timestamp to an LDAP GeneralizedTime in UTC " +
			"(YYYYMMDDHHMMSSZ, with a fraction of a second only if there is one), the inverse of " +
			"generalizedToRFC3339. It accepts a string or a list, whose first value is used. " +
			"rfc3339ToGeneralized(nil) is nil; an invalid timestamp is an error.",
		Examples: []Example{
			{Expr: `rfc3339ToGeneralized("2024-01-31T23:59:59Z")`, Want: "20240131235959Z"},
			{Expr: `rfc3339ToGeneralized("2024-02-01T01:59:59.250+02:00")`, Want: "20240131235959.25Z"},
			{Expr: `rfc3339ToGeneralized(first(validUntil))`, Attrs: map[string][]string{"validUntil": nil}, Want: nil},
		},
	},
	{
		Name:   "filetimeToRFC3339",
		Family: "time",
		Sig:    []any{new(func([]string) string), new(func(string) string)},
		Fn:     filetimeToRFC3339,
		Doc: "filetimeToRFC3339 converts an Active Directory FILETIME (a decimal count of 100-nanosecond " +
			"intervals since 1601-01-01 UTC, as in accountExpires, pwdLastSet or lastLogonTimestamp) to " +
			"an RFC 3339 timestamp in UTC. 0 and 9223372036854775807 mean never (or not set) and give " +
			"nil, as does filetimeToRFC3339(nil). It accepts a string or a list, whose first value is " +
			"used; a negative, non-numeric or after-year-9999 value is an error.",
		Examples: []Example{
			{Expr: `filetimeToRFC3339(pwdLastSet)`, Attrs: map[string][]string{"pwdLastSet": {"133512191990000000"}}, Want: "2024-01-31T23:59:59Z"},
			{Expr: `filetimeToRFC3339(accountExpires) ?? "never"`, Attrs: map[string][]string{"accountExpires": {"9223372036854775807"}}, Want: "never"},
			{Expr: `filetimeToRFC3339("0")`, Want: nil},
			{Expr: `filetimeToRFC3339(accountExpires)`, Attrs: map[string][]string{"accountExpires": nil}, Want: nil},
		},
	},
}

func generalizedToRFC3339(args ...any) (any, error) {
	if err := arity("generalizedToRFC3339", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := single("generalizedToRFC3339", args[0])
	if !ok {
		return nil, err
	}
	t, err := parseGeneralizedTime(s)
	if err != nil {
		return nil, fmt.Errorf("generalizedToRFC3339: invalid GeneralizedTime %q: %w", s, err)
	}
	return t.Format(time.RFC3339Nano), nil
}

// parseGeneralizedTime parses RFC 4517 §3.3.13:
//
//	GeneralizedTime = century year month day hour
//	                     [ minute [ second / leap-second ] ]
//	                     [ fraction ]
//	                     g-time-zone
//	fraction        = ( DOT / COMMA ) 1*DIGIT
//	g-time-zone     = %x5A  ; "Z"
//	                  / g-differential
//	g-differential  = ( MINUS / PLUS ) hour [ minute ]
//
// A leap second (60) is folded into the next minute, as time.Date does.
func parseGeneralizedTime(s string) (time.Time, error) {
	rest := s
	num := func(n int, what string, lo, hi int) (int, error) {
		if len(rest) < n {
			return 0, fmt.Errorf("missing %s", what)
		}
		v := 0
		for i := 0; i < n; i++ {
			c := rest[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("missing %s", what)
			}
			v = v*10 + int(c-'0')
		}
		if v < lo || v > hi {
			return 0, fmt.Errorf("%s %0*d out of range", what, n, v)
		}
		rest = rest[n:]
		return v, nil
	}
	isDigit := func() bool { return len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' }

	year, err := num(4, "year", 0, 9999)
	if err != nil {
		return time.Time{}, err
	}
	month, err := num(2, "month", 1, 12)
	if err != nil {
		return time.Time{}, err
	}
	day, err := num(2, "day", 1, 31)
	if err != nil {
		return time.Time{}, err
	}
	hour, err := num(2, "hour", 0, 23)
	if err != nil {
		return time.Time{}, err
	}
	minute, second := 0, 0
	unit := time.Hour // the unit a fraction applies to
	if isDigit() {
		if minute, err = num(2, "minute", 0, 59); err != nil {
			return time.Time{}, err
		}
		unit = time.Minute
		if isDigit() {
			if second, err = num(2, "second", 0, 60); err != nil {
				return time.Time{}, err
			}
			unit = time.Second
		}
	}
	if time.Month(month) != time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Month() {
		return time.Time{}, fmt.Errorf("day %02d out of range", day)
	}
	var frac time.Duration
	if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
		rest = rest[1:]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 {
			return time.Time{}, fmt.Errorf("empty fraction")
		}
		f, err := strconv.ParseFloat("0."+rest[:n], 64)
		if err != nil {
			return time.Time{}, err
		}
		frac = time.Duration(math.Round(f * float64(unit)))
		rest = rest[n:]
	}
	var offset time.Duration
	switch {
	case rest == "Z":
	case len(rest) > 0 && (rest[0] == '+' || rest[0] == '-'):
		sign := rest[0]
		rest = rest[1:]
		oh, err := num(2, "zone hour", 0, 23)
		if err != nil {
			return time.Time{}, err
		}
		om := 0
		if rest != "" {
			if om, err = num(2, "zone minute", 0, 59); err != nil {
				return time.Time{}, err
			}
		}
		if rest != "" {
			return time.Time{}, fmt.Errorf("trailing %q", rest)
		}
		offset = time.Duration(oh)*time.Hour + time.Duration(om)*time.Minute
		if sign == '-' {
			offset = -offset
		}
	case rest == "":
		return time.Time{}, fmt.Errorf("missing time zone (Z or an offset)")
	default:
		return time.Time{}, fmt.Errorf("unexpected %q", rest)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	return t.Add(frac - offset), nil
}

func rfc3339ToGeneralized(args ...any) (any, error) {
	if err := arity("rfc3339ToGeneralized", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := single("rfc3339ToGeneralized", args[0])
	if !ok {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("rfc3339ToGeneralized: invalid RFC 3339 timestamp %q: %w", s, err)
	}
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return nil, fmt.Errorf("rfc3339ToGeneralized: year %d out of range", t.Year())
	}
	var b strings.Builder
	b.Grow(len("20060102150405.999999999Z"))
	b.WriteString(t.Format("20060102150405"))
	if ns := t.Nanosecond(); ns != 0 {
		frac := strconv.Itoa(1e9 + ns)[1:]
		b.WriteByte('.')
		b.WriteString(strings.TrimRight(frac, "0"))
	}
	b.WriteByte('Z')
	return b.String(), nil
}

// filetimeEpochSeconds is 1601-01-01 as seconds relative to 1970-01-01.
const filetimeEpochSeconds = -11644473600

func filetimeToRFC3339(args ...any) (any, error) {
	if err := arity("filetimeToRFC3339", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := single("filetimeToRFC3339", args[0])
	if !ok {
		return nil, err
	}
	ft, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ft < 0 {
		return nil, fmt.Errorf("filetimeToRFC3339: invalid FILETIME %q: want a non-negative decimal integer", s)
	}
	if ft == 0 || ft == math.MaxInt64 {
		return nil, nil
	}
	t := time.Unix(filetimeEpochSeconds+ft/1e7, (ft%1e7)*100).UTC()
	if t.Year() > 9999 {
		return nil, fmt.Errorf("filetimeToRFC3339: FILETIME %q is after year 9999", s)
	}
	return t.Format(time.RFC3339Nano), nil
}
