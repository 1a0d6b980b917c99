package lang

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/scimsync/scimsync/builtins"
	"github.com/scimsync/scimsync/engine/secret"
)

// Settings are evaluated once, at load. Their expressions may call env and
// file — the only I/O a script does, through LoadOptions — and the pure
// builtins; they see no entry.

// kind is the type a setting's value must have.
type kind int

const (
	kString   kind = iota
	kStrings       // a string or a list of strings
	kBool          // true or false
	kInt           // a whole number
	kDuration      // "10s", "1m30s", or a number of seconds
	kSecret        // a string kept out of every output
	kPath          // a string; a relative path is taken relative to the script
	kExpr          // a per-change expression, compiled (not evaluated) at load
)

// spec describes one setting of a block.
type spec struct {
	kind     kind
	required bool
	enum     []string // allowed values for kString/kStrings
}

// Short names for the evaluated settings' types.
type (
	secretT   = secret.Secret
	durationT = time.Duration
)

// settingsFuncs are env() and file(), bound to the load's options.
type settingsFuncs struct {
	opts *LoadOptions
	dir  string
}

func (sf *settingsFuncs) options() []expr.Option {
	opts := append([]expr.Option{}, builtins.Options()...)
	opts = append(opts,
		expr.Function("env", func(args ...any) (any, error) {
			name, _ := args[0].(string)
			v, ok := sf.opts.lookupEnv(name)
			if ok {
				return v, nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return nil, &settingIOError{fmt.Sprintf("environment variable %s is not set", name)}
		}, new(func(string) string), new(func(string, string) string)),
		expr.Function("file", func(args ...any) (any, error) {
			name, _ := args[0].(string)
			path := name
			if !filepath.IsAbs(path) {
				path = filepath.Join(sf.dir, path)
			}
			data, err := sf.opts.readFile(path)
			if err != nil {
				return nil, &settingIOError{fmt.Sprintf("cannot read file %s: %v", name, unwrapPathError(err))}
			}
			return strings.TrimRight(string(data), "\r\n"), nil
		}, new(func(string) string)),
	)
	return opts
}

// settingIOError is env's or file's own failure: it names the variable or
// the file, never a value, so it is shown as is.
type settingIOError struct{ msg string }

func (e *settingIOError) Error() string { return e.msg }

// eval compiles and runs one setting expression.
func (c *compiler) evalSetting(s *setting, sp spec) (any, bool) {
	prog, err := expr.Compile(s.expr.text, c.settings...)
	if err != nil {
		c.exprError(s.expr, err, nil)
		return nil, false
	}
	var m vm.VM
	v, err := m.Run(prog, nil)
	if err != nil {
		// A runtime message may quote a value ("parsing \"tok…\": invalid
		// syntax") read by env() or file(), perhaps a token. Only env's and
		// file's own messages, which name a variable or a file, are shown.
		var own *settingIOError
		if !errors.As(err, &own) {
			var fe *file.Error
			if !errors.As(err, &fe) {
				fe = &file.Error{}
			}
			err = &file.Error{Location: fe.Location, Message: "the expression failed (its message is withheld: " +
				"a setting's error never quotes a value, which may come from env() or file()); " +
				"check the conversions it makes, e.g. int(…) of a value that is not a number"}
		}
		c.exprError(s.expr, err, nil)
		return nil, false
	}
	out, msg := convertSetting(v, sp)
	if msg != "" {
		// The value itself is never quoted: it may come from env() or file().
		c.errorf(s.expr.off, len([]rune(s.expr.text)), "%s: %s", s.key, msg)
		return nil, false
	}
	return out, true
}

// convertSetting checks and converts an evaluated value to its kind. It
// returns a message (without the value) when the value does not fit.
func convertSetting(v any, sp spec) (any, string) {
	switch sp.kind {
	case kString, kPath, kSecret:
		s, ok := v.(string)
		if !ok {
			return nil, "want a string, got " + typeName(v)
		}
		if len(sp.enum) > 0 && !contains(sp.enum, s) {
			return nil, "want one of " + strings.Join(sp.enum, ", ")
		}
		if sp.kind == kSecret {
			return secret.New(s), ""
		}
		return s, ""
	case kStrings:
		var out []string
		switch x := v.(type) {
		case string:
			out = []string{x}
		case []string:
			out = x
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, "want a list of strings, found " + typeName(e)
				}
				out = append(out, s)
			}
		default:
			return nil, "want a string or a list of strings, got " + typeName(v)
		}
		for _, s := range out {
			if len(sp.enum) > 0 && !contains(sp.enum, s) {
				return nil, "want values from " + strings.Join(sp.enum, ", ")
			}
		}
		return out, ""
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return nil, "want true or false, got " + typeName(v)
		}
		return b, ""
	case kInt:
		n, ok := v.(int)
		if !ok {
			return nil, "want a whole number, got " + typeName(v)
		}
		return n, ""
	case kDuration:
		switch x := v.(type) {
		case int:
			return time.Duration(x) * time.Second, ""
		case float64:
			return time.Duration(x * float64(time.Second)), ""
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return nil, `want a duration such as "10s", "500ms" or "1m30s"`
			}
			return d, ""
		}
		return nil, "want a duration, got " + typeName(v)
	}
	return v, ""
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int64, float64:
		return "number"
	case []any, []string:
		return "list"
	case map[string]any:
		return "map"
	}
	return reflect.TypeOf(v).String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unwrapPathError drops the path from an *fs.PathError: the message names
// the file as the script wrote it.
func unwrapPathError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
