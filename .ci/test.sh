#!/usr/bin/env bash
# The README's test command. On a Debian machine with Go it installs what the
# tests need, starts the real servers on 127.0.0.1 (stopped again on exit),
# and runs every test with the race detector. With the servers up, a
# real-server test that would skip fails instead (SCIMSYNC_REQUIRE_SERVERS).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "test.sh: needs Go 1.26 or later on PATH" >&2; exit 1; }

# The SCIMMY-based SCIM 2.0 server (testdata/servers/), with HTTPS and mTLS.
# shellcheck source=.ci/scim.sh
source .ci/scim.sh
# OpenLDAP slapd (syncprov, accesslog) and 389 Directory Server (retro
# changelog, content sync), from Debian's packages.
# shellcheck source=.ci/ldap.sh
source .ci/ldap.sh
# A Samba Active Directory DC (DirSync) on 127.0.0.1:389; as root only, since
# Samba's LDAP port is fixed (not root: the AD tests skip, saying so).
# shellcheck source=.ci/samba.sh
source .ci/samba.sh
export SCIMSYNC_REQUIRE_SERVERS=1

# --- repl: tmux, for the terminal UI test (cmd/scimsync/repl_test.go) ---
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux >/dev/null; }
# --- end repl ---

# The fault (chaos) test runs beside the rest, verbose, so that its figures
# (changes, kills, restarts, faults, and the missing/extra/differing/
# duplicate/parked counts) are printed on every run; it drives a binary, so
# it needs no race detector of its own.
chaoslog=$(mktemp "${TMPDIR:-/tmp}/scimsync-chaos.XXXXXX")
go test -count=1 -v ./engine/chaos/ >"$chaoslog" 2>&1 &
chaos=$!
status=0
go test -race -count=1 $(go list ./... | grep -v '/engine/chaos$') || status=$?
cstatus=0
wait "$chaos" || cstatus=$?
if ((cstatus != 0)); then
  cat "$chaoslog"
  # The log is long and a CI report may keep only its tail: the verdict
  # (the figures line and every failed check with its first details) again,
  # last.
  echo "---- the fault test failed; its verdict again ----"
  grep -E -o 'chaos_test\.go:[0-9]+: figures [a-z0-9]+: seed [0-9]+|result: .*' "$chaoslog" | cut -c1-300 || true
  grep -E -A6 'chaos_test\.go:[0-9]+: (the driver |the directory refused |[0-9]+ kills |SCIM is not |[0-9]+ changes parked |the last run --once |failed list)' "$chaoslog" | cut -c1-300 | tail -n 40 || true
else
  grep -E '^\s*chaos_test\.go:[0-9]+: (chaos |figures )|^\s*--- |^(ok|FAIL|PASS)\b' "$chaoslog" || true
fi
rm -f "$chaoslog"
exit $((status != 0 ? status : cstatus))
