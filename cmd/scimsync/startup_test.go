package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/source"
)

// refused is what go-ldap returns when nothing listens on the port.
func refused() error {
	return ldap.NewError(ldap.ErrorNetwork, &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
}

func TestTransientSourceError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused(), true},
		{"refused, wrapped by the url", fmt.Errorf("ldap://127.0.0.1:1: %w", refused()), true},
		{"two urls, both down", errors.Join(refused(), refused()), true},
		{"one url down, one with a bad base", errors.Join(ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("no such object")), refused()), true},
		{"connection reset", fmt.Errorf("reading the root DSE: %w", syscall.ECONNRESET), true},
		{"server busy (51)", ldap.NewError(ldap.LDAPResultBusy, errors.New("busy")), true},
		{"server unavailable (52)", ldap.NewError(ldap.LDAPResultUnavailable, errors.New("starting")), true},
		{"timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"unexpected EOF", fmt.Errorf("bind: %w", io.ErrUnexpectedEOF), true},
		{"credentials refused (49)", fmt.Errorf("%w: bind as %q: Invalid Credentials", source.ErrAuth, "cn=admin"), false},
		{"bind result 49 unwrapped", fmt.Errorf("bind: %w", ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New("invalid credentials"))), false},
		{"invalid DN syntax (34)", ldap.NewError(ldap.LDAPResultInvalidDNSyntax, errors.New("invalid DN")), false},
		{"base DN absent (32)", fmt.Errorf("reading the root DSE: %w", ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("no such object"))), false},
		{"bad checkpoint", fmt.Errorf("%w: the syncrepl cookie is not base64", source.ErrBadPosition), false},
		{"trimmed changelog", &source.TrimmedError{Checkpoint: 4, First: 9, Missing: 5}, false},
		{"certificate not trusted", ldap.NewError(ldap.ErrorNetwork, &net.OpError{Op: "remote error", Err: x509.UnknownAuthorityError{}}), false},
		{"host name unknown", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "ldap.nowhere", IsNotFound: true}}, false},
		{"script problem", errors.New(`source url "http://x": want ldap://host[:port] or ldaps://host[:port]`), false},
		{"LDIF file missing", &os.PathError{Op: "open", Path: "people.ldif", Err: syscall.ENOENT}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transientSourceError(tt.err); got != tt.want {
				t.Errorf("transientSourceError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestSourceWait: transient failures are waited out and logged once each
// way; anything else fails at once; the start-up timeout bounds the wait.
func TestSourceWait(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error // what open returns, in turn; then nil
		timeout  time.Duration
		wantErr  string
		wantLogs []string // messages, in order
		calls    int
	}{
		{name: "up at once", calls: 1},
		{name: "down three times", errs: []error{refused(), refused(), refused()}, calls: 4,
			wantLogs: []string{"source unavailable since ", "source available again after "}},
		{name: "credentials refused", errs: []error{fmt.Errorf("%w: bind", source.ErrAuth)}, calls: 1,
			wantErr: "directory refused the credentials: bind"},
		{name: "down, then a permanent error", errs: []error{refused(), ldap.NewError(ldap.LDAPResultInvalidDNSyntax, errors.New("invalid DN"))}, calls: 2,
			wantErr: "invalid DN", wantLogs: []string{"source unavailable since "}},
		{name: "down past the timeout", errs: []error{refused(), refused(), refused(), refused(), refused(), refused(), refused(), refused()},
			timeout: time.Nanosecond, wantErr: "(--startup-timeout 1ns): LDAP Result Code 200", wantLogs: []string{"source unavailable since "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			w := newSourceWait(slog.New(slog.NewTextHandler(&logs, nil)), tt.timeout)
			w.min = time.Millisecond
			calls := 0
			err := w.do(context.Background(), func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if tt.calls > 0 && calls != tt.calls {
				t.Errorf("%d calls, want %d", calls, tt.calls)
			}
			var msgs []string
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if i := strings.Index(line, "msg=\""); i >= 0 {
					msgs = append(msgs, line[i+5:])
				}
			}
			if len(msgs) != len(tt.wantLogs) {
				t.Fatalf("logged %q, want %d lines starting %q", msgs, len(tt.wantLogs), tt.wantLogs)
			}
			for i, m := range msgs {
				if !strings.HasPrefix(m, tt.wantLogs[i]) {
					t.Errorf("log %d: %q, want it to start %q", i, m, tt.wantLogs[i])
				}
			}
		})
	}
}

// TestSourceWaitStops: a run stopped (SIGTERM) while it waits returns at
// once with the context's error.
func TestSourceWaitStops(t *testing.T) {
	w := newSourceWait(slog.New(slog.DiscardHandler), 0)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := w.do(ctx, func(context.Context) error {
		calls++
		cancel()
		return refused()
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("%d calls, error %v", calls, err)
	}
}
