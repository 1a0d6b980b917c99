package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// logFlagSet is --log-format and --log-level, shared by every command that
// logs, so that an operator sets them the same way everywhere.
type logFlagSet struct {
	format, level *string
}

// logFlags adds --log-format and --log-level to fs.
func logFlags(fs *pflag.FlagSet) *logFlagSet {
	return &logFlagSet{
		format: fs.String("log-format", "auto", "log lines as json, text, or auto (text on a terminal, JSON otherwise)"),
		level:  fs.String("log-level", "info", "the least important log lines written: debug, info, warn or error"),
	}
}

// logger makes the logger the flags ask for, writing to w.
func (l *logFlagSet) logger(w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(*l.level)
	if err != nil {
		return nil, err
	}
	return formatLogger(w, *l.format, level)
}

// parseLevel reads a --log-level.
func parseLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return lv, nil
}

// formatLogger makes a logger of the --log-format named.
func formatLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", "auto":
		return newLogger(w, level), nil
	case "json":
		return slog.New(logsafe.NewHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(logsafe.NewHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json, text or auto", format)
}
