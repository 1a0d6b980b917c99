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

go test -race -count=1 ./...
