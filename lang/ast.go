package lang

// The syntax tree of a pipe script, as parse produces it. Offsets are byte
// offsets into the script; compile turns them into positions.

// script is a whole pipe script.
type script struct {
	name    string // from `pipe "name"`
	nameOff int
	blocks  []*block
}

// block is `source KIND { … }`, `scim { … }`, `endpoint NAME { … }`,
// `class NAME { … }` or, inside a class, `map { … }`.
type block struct {
	kind     string
	off      int
	label    string // source kind, endpoint or class name; "" for scim and map
	labelOff int
	settings []*setting
	blocks   []*block   // nested blocks (a class's map)
	mappings []*mapping // a map block's mappings
}

// setting is `key = expression`.
type setting struct {
	key    string
	keyOff int
	expr   exprText
}

// mapping is `[@usage…] target = expression` inside a map block.
type mapping struct {
	usage     []word
	target    string // unquoted path text
	targetOff int    // offset of the path text's first byte (inside the quotes when quoted)
	expr      exprText
}

// word is an identifier with its offset.
type word struct {
	name string
	off  int
}

// exprText is the source of one expr expression and where it starts. Comments
// inside it are blanked with spaces so that offsets still line up.
type exprText struct {
	text string
	off  int
}
