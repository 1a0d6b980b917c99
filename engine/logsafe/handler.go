package logsafe

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler wraps a slog.Handler so that every line it writes is safe: the
// message is capped to MaxMessage bytes, every string value (errors and
// fmt.Stringers included, in groups too) to MaxValue, and all are escaped.
// Capping here, where the line is made, holds for every logger of the
// process whatever a caller passes: a 100 KB uid retried ten times is ten
// lines of about 2 KB.
type Handler struct {
	h slog.Handler
}

// NewHandler returns h made safe; a Handler is returned as is.
func NewHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(*Handler); ok {
		return h
	}
	return &Handler{h: h}
}

// Enabled reports whether the wrapped handler takes records of level.
func (s *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return s.h.Enabled(ctx, level)
}

// Handle passes a safe copy of r to the wrapped handler, or r itself when
// it is safe already (the usual line: a copy costs as much as the rest).
func (s *Handler) Handle(ctx context.Context, r slog.Record) error {
	msg := Escape(Cap(r.Message, MaxMessage))
	if msg == r.Message && safeAttrs(r) {
		return s.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(safeAttr(a))
		return true
	})
	return s.h.Handle(ctx, out)
}

// WithAttrs makes the attributes safe once, when they are added.
func (s *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		safe[i] = safeAttr(a)
	}
	return &Handler{h: s.h.WithAttrs(safe)}
}

// WithGroup opens a group in the wrapped handler.
func (s *Handler) WithGroup(name string) slog.Handler {
	return &Handler{h: s.h.WithGroup(Escape(name))}
}

// safeAttrs reports whether safeAttr would leave every attribute of r as
// it is. Values it would convert (errors, Stringers, bytes, LogValuers)
// count as not.
func safeAttrs(r slog.Record) bool {
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		ok = isSafeAttr(a)
		return ok
	})
	return ok
}

func isSafeAttr(a slog.Attr) bool {
	if Escape(Cap(a.Key, 256)) != a.Key {
		return false
	}
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return Text(v.String()) == v.String()
	case slog.KindGroup:
		for _, g := range v.Group() {
			if !isSafeAttr(g) {
				return false
			}
		}
		return true
	case slog.KindLogValuer:
		return false
	case slog.KindAny:
		x, ok := v.Any().([]string)
		if !ok {
			return false // error, Stringer, []byte: converted; anything else: as safeValue leaves it, but rare
		}
		total := 0
		for _, e := range x {
			if total += len(e); total > MaxValue || Text(e) != e {
				return false
			}
		}
		return true
	}
	return true // numbers, booleans, times, durations
}

func safeAttr(a slog.Attr) slog.Attr {
	a.Key = Escape(Cap(a.Key, 256))
	a.Value = safeValue(a.Value)
	return a
}

func safeValue(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(Text(v.String()))
	case slog.KindGroup:
		g := v.Group()
		safe := make([]slog.Attr, len(g))
		for i, a := range g {
			safe[i] = safeAttr(a)
		}
		return slog.GroupValue(safe...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.StringValue(Text(x.Error()))
		case fmt.Stringer:
			return slog.StringValue(Text(x.String()))
		case []byte:
			return slog.StringValue(Text(string(x)))
		case []string:
			safe := make([]string, len(x))
			total := 0
			for i, e := range x {
				safe[i] = Text(e)
				if total += len(safe[i]); total > MaxValue {
					safe = append(safe[:i+1], fmt.Sprintf("…(+%d more)", len(x)-i-1))
					break
				}
			}
			return slog.AnyValue(safe)
		}
	}
	return v
}
