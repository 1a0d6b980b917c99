package scim

import "fmt"

// MaxDepth is how deeply the objects and arrays of a SCIM document may nest.
// A User with an enterprise extension and complex multi-valued attributes
// nests 4 levels; a ListResponse of them 6. A document past MaxDepth is
// refused before any walk over it: a hostile or broken service answering
// with JSON nested 200 000 levels deep would otherwise cost the recursive
// readers (the PATCH diff, gjson's own walks) stack and CPU out of all
// proportion to its size.
const MaxDepth = 64

// DepthError is a document nested deeper than MaxDepth.
type DepthError struct {
	Depth int // the depth reached when reading stopped (MaxDepth+1)
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("the JSON document nests deeper than %d levels", MaxDepth)
}

// CheckDepth returns a *DepthError when the objects and arrays of doc nest
// deeper than MaxDepth. It scans the bytes once, skipping strings, and
// does not validate the JSON otherwise.
func CheckDepth(doc []byte) error {
	depth := 0
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '"':
			for i++; i < len(doc) && doc[i] != '"'; i++ {
				if doc[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return &DepthError{Depth: depth}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
