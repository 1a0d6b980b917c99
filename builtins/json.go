package builtins

import (
	"encoding/json"
	"fmt"
)

var jsonFuncs = []*Func{
	{
		Name:   "parseJSON",
		Family: "json",
		Sig:    []any{new(func([]string) any), new(func(string) any)},
		Fn:     parseJSON,
		Doc: "parseJSON parses a JSON text, such as an attribute holding a JSON document, into maps " +
			"(map[string]any), lists, strings, float64 numbers (integers beyond 2^53 lose precision), " +
			"booleans and nil. It accepts a string or a list, whose first value is used. parseJSON(nil) " +
			"is nil (as is the JSON text null); invalid JSON is an error quoting the JSON parser's " +
			"message.",
		Examples: []Example{
			{Expr: `parseJSON(first(description)).team`, Attrs: map[string][]string{"description": {`{"team": "blue", "floor": 3}`}}, Want: "blue"},
			{Expr: `parseJSON("[1, \"two\", true]")`, Want: []any{1.0, "two", true}},
			{Expr: `parseJSON(description)`, Attrs: map[string][]string{"description": nil}, Want: nil},
			{Expr: `parseJSON("{\"a\": }")`, Err: "parseJSON: invalid JSON: invalid character '}' looking for beginning of value"},
		},
	},
}

func parseJSON(args ...any) (any, error) {
	if err := arity("parseJSON", args, 1); err != nil {
		return nil, err
	}
	s, ok, err := single("parseJSON", args[0])
	if !ok {
		return nil, err
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("parseJSON: invalid JSON: %w", err)
	}
	return v, nil
}
