package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/source"
)

// sourceWait retries opening the source while the directory is down at
// start-up, the way a running source reconnects (issue 11 #5): a run
// started during a directory restart or outage waits for it instead of
// exiting, and a service manager does not have to restart it in a loop.
// Errors waiting will not cure (refused credentials, a base DN that does
// not exist, a bad certificate, a script problem) fail at once.
type sourceWait struct {
	log     *slog.Logger
	timeout time.Duration // 0: wait as long as it takes
	start   time.Time
	// min and max bound the delay between attempts, which doubles from
	// min, with up to 25 % jitter so that many runs do not retry in step.
	min, max time.Duration

	down time.Time // when the current outage began; zero when none
}

func newSourceWait(log *slog.Logger, timeout time.Duration) *sourceWait {
	return &sourceWait{log: log, timeout: timeout, start: time.Now(), min: 250 * time.Millisecond, max: time.Minute}
}

// do calls open until it succeeds, fails with an error that is not
// transient, the start-up timeout passes (counted from newSourceWait, so
// it bounds every call together) or ctx is done. It logs the outage once
// when it begins and once when it ends, not once per attempt.
func (w *sourceWait) do(ctx context.Context, open func(context.Context) error) error {
	wait := w.min
	for {
		err := open(ctx)
		if err == nil {
			if !w.down.IsZero() {
				w.log.Info("source available again after "+time.Since(w.down).Round(time.Millisecond).String(),
					"downSeconds", time.Since(w.down).Seconds())
				w.down = time.Time{}
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transientSourceError(err) {
			return err
		}
		if w.down.IsZero() {
			w.down = time.Now()
			w.log.Warn("source unavailable since "+w.down.Format(time.RFC3339)+"; waiting for it", "error", err.Error())
		}
		sleep := wait + rand.N(wait/4+1)
		if w.timeout > 0 {
			left := w.timeout - time.Since(w.start)
			if left <= 0 {
				return fmt.Errorf("the source was unavailable for %s (--startup-timeout %s): %w",
					time.Since(w.down).Round(time.Second), w.timeout, err)
			}
			sleep = min(sleep, left)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, w.max)
	}
}

// transientSourceError reports whether an error opening the source means
// the directory cannot be reached or cannot serve right now (connection
// refused or reset, a timeout, an LDAP server busy, unavailable or down),
// as opposed to a problem that waiting does not cure: refused credentials
// (LDAP result 49), a base DN that is invalid or absent, a certificate
// that does not verify, a checkpoint or a setting that is wrong.
func transientSourceError(err error) bool {
	if errors.Is(err, source.ErrAuth) || errors.Is(err, source.ErrBadPosition) || errors.Is(err, source.ErrTrimmed) ||
		errors.Is(err, source.ErrUnsupportedStart) {
		return false
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) {
		return false
	}
	return transientNode(err)
}

// transientNode looks for a transient cause in err's tree (several URLs
// give errors.Join of one error each: one server down among them is
// enough to wait).
func transientNode(err error) bool {
	if err == nil {
		return false
	}
	if le, ok := err.(*ldap.Error); ok {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultServerDown,
			ldap.LDAPResultTimeout, ldap.LDAPResultConnectError:
			return true
		}
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // a host name that does not exist: a typo more often than an outage
	}
	if errno, ok := err.(syscall.Errno); ok {
		// an Errno is a net.Error too, whatever it says: only these are
		// about the connection
		switch errno {
		case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EHOSTUNREACH,
			syscall.ENETUNREACH, syscall.ETIMEDOUT:
			return true
		}
		return false
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return true
	}
	if _, ok := err.(*net.OpError); ok {
		// a network operation failed: unless its cause says otherwise (a
		// host name that does not exist, found above), the directory may
		// come back
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return transientNode(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if transientNode(e) {
				return true
			}
		}
	}
	return false
}
