package engine

import (
	"encoding/json"
	"fmt"

	"github.com/scimsync/scimsync/lang"
)

// changeJSON is how a parked change is kept in the state store.
type changeJSON struct {
	Type    string              `json:"type"`
	DN      string              `json:"dn"`
	OldDN   string              `json:"oldDN,omitempty"`
	Changed []string            `json:"changed,omitempty"`
	Attrs   []lang.Attr         `json:"attrs,omitempty"`
	Extra   map[string][]string `json:"-"`
}

// EncodeChange serializes a change, its entry included, for the
// failed-changes record. Password attributes are not kept: a parked change
// is retried against the entry as it was, without them.
func EncodeChange(ch *lang.Change) ([]byte, error) {
	j := changeJSON{Type: ch.Type.String(), DN: ch.DN, OldDN: ch.OldDN, Changed: ch.Changed}
	for _, a := range ch.Entry.Attrs() {
		if lang.IsSecretAttribute(a.Name) {
			continue
		}
		j.Attrs = append(j.Attrs, a)
	}
	return json.Marshal(j)
}

// DecodeChange reads what EncodeChange wrote.
func DecodeChange(data []byte) (*lang.Change, error) {
	var j changeJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("parked change: %w", err)
	}
	t, ok := lang.ParseChangeType(j.Type)
	if !ok {
		return nil, fmt.Errorf("parked change: unknown change type %q", j.Type)
	}
	return &lang.Change{Type: t, DN: j.DN, OldDN: j.OldDN, Changed: j.Changed, Entry: lang.NewEntry(j.DN, j.Attrs)}, nil
}
