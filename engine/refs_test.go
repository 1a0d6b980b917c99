package engine

import "testing"

func TestLRU(t *testing.T) {
	c := newLRU(2)
	c.put("a", cached{ok: true})
	c.put("b", cached{})
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("c", cached{}) // evicts b, the least recent
	if _, ok := c.get("b"); ok {
		t.Error("b was not evicted")
	}
	if v, ok := c.get("a"); !ok || !v.ok {
		t.Error("a was evicted instead of b")
	}
	c.remove("a")
	if _, ok := c.get("a"); ok || c.ll.Len() != 1 || len(c.items) != 1 {
		t.Error("remove left a behind")
	}
}
