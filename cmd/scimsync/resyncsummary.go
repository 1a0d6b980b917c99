package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/lang"
)

// classTally counts a resync's outcomes per class, for the summary lines
// after the totals: which class created, updated or left what.
type classTally struct {
	mu     sync.Mutex
	counts map[string]map[engine.Outcome]int64
}

// add counts one outcome of class.
func (c *classTally) add(class string, o engine.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]map[engine.Outcome]int64{}
	}
	if c.counts[class] == nil {
		c.counts[class] = map[engine.Outcome]int64{}
	}
	c.counts[class][o]++
}

// tallyOrder is the order outcomes are listed in.
var tallyOrder = []engine.Outcome{engine.Created, engine.Updated, engine.Unchanged, engine.Skipped}

// print writes one line per class, in the order of the script's classes:
// "  class people: 3 created, 1 updated, 40 unchanged".
func (c *classTally) print(w io.Writer, classes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := slices.Clone(classes)
	for n := range c.counts {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		counts := c.counts[n]
		if len(counts) == 0 || n == "" {
			// "": entries no class took, counted as out of scope on the
			// summary line.
			continue
		}
		var parts []string
		for _, o := range tallyOrder {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
		fmt.Fprintf(w, "  class %s: %s\n", n, strings.Join(parts, ", "))
	}
}

// classNames are the script's classes, in order.
func classNames(p *lang.Pipe) []string {
	names := make([]string, 0, len(p.Classes))
	for _, c := range p.Classes {
		names = append(names, c.Name)
	}
	return names
}
