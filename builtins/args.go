package builtins

import (
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
)

// typeName names the type of v as pipe-script authors see it.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "int"
	case float32, float64:
		return "float"
	case []string:
		return "list of strings"
	case []any:
		return "list"
	case []byte:
		return "bytes"
	case map[string]any:
		return "map"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// typeErr is the error for an argument of the wrong type. arg names the
// argument for functions with several; it is empty for the main input.
func typeErr(fn, arg, want string, got any) error {
	if arg != "" {
		return fmt.Errorf("%s: %s: want %s, got %s", fn, arg, want, typeName(got))
	}
	return fmt.Errorf("%s: want %s, got %s", fn, want, typeName(got))
}

// arity guards direct calls of Fn; expr's checker already enforces the
// declared arity in expressions.
func arity(fn string, args []any, n int) error {
	if len(args) != n {
		return fmt.Errorf("%s: want %d arguments, got %d", fn, n, len(args))
	}
	return nil
}

// str returns the string in v. ok is false when v is nil.
func str(fn, arg string, v any) (s string, ok bool, err error) {
	switch v := v.(type) {
	case string:
		return v, true, nil
	case nil:
		return "", false, nil
	default:
		return "", false, typeErr(fn, arg, "string", v)
	}
}

// reqStr returns the string in v; nil is an error. It is used for secondary
// arguments such as separators and patterns.
func reqStr(fn, arg string, v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", typeErr(fn, arg, "string", v)
}

// single returns the string in v, or the first value if v is a list, as for
// single-valued attributes. ok is false when v is nil or an empty list.
func single(fn string, v any) (s string, ok bool, err error) {
	switch v := v.(type) {
	case string:
		return v, true, nil
	case nil:
		return "", false, nil
	case []string:
		if len(v) == 0 {
			return "", false, nil
		}
		return v[0], true, nil
	case []any:
		if len(v) == 0 || v[0] == nil {
			return "", false, nil
		}
		if s, ok := v[0].(string); ok {
			return s, true, nil
		}
		return "", false, typeErr(fn, "", "string or list of strings", v[0])
	case []byte:
		return string(v), true, nil
	default:
		return "", false, typeErr(fn, "", "string or list of strings", v)
	}
}

// list calls yield for each string of a list or for a single string. nil
// values and nil items are skipped. It returns false if v is nil.
func list(fn string, v any, yield func(string)) (ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case string:
		yield(v)
	case []string:
		for _, s := range v {
			yield(s)
		}
	case []any:
		for _, item := range v {
			switch item := item.(type) {
			case nil:
			case string:
				yield(item)
			default:
				return false, fmt.Errorf("%s: want list of strings, got an item of type %s", fn, typeName(item))
			}
		}
	default:
		return false, typeErr(fn, "", "list of strings", v)
	}
	return true, nil
}

// cache is a bounded concurrent cache of values built from strings, such as
// compiled regular expressions and parsed base DNs. Once full it stops
// storing: scripts use a handful of literal patterns, and a script that
// builds patterns from data must not make the cache grow without bound.
type cache[V any] struct {
	m     sync.Map
	n     atomic.Int64
	max   int64
	build func(string) (V, error)
}

func (c *cache[V]) get(key string) (V, error) {
	if v, ok := c.m.Load(key); ok {
		return v.(V), nil
	}
	v, err := c.build(key)
	if err != nil {
		return v, err
	}
	if c.n.Load() < c.max {
		if _, loaded := c.m.LoadOrStore(key, v); !loaded {
			c.n.Add(1)
		}
	}
	return v, nil
}

const cacheSize = 512

var regexps = &cache[*regexp.Regexp]{max: cacheSize, build: regexp.Compile}

// validRegexp is the ConstArgs check for pattern arguments.
func validRegexp(pattern string) error {
	_, err := regexps.get(pattern)
	if err != nil {
		return fmt.Errorf("invalid pattern: %w", err)
	}
	return nil
}

// pattern returns the compiled regular expression in v.
func pattern(fn string, v any) (*regexp.Regexp, error) {
	p, err := reqStr(fn, "pattern", v)
	if err != nil {
		return nil, err
	}
	re, err := regexps.get(p)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid pattern: %w", fn, err)
	}
	return re, nil
}
