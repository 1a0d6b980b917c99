# testdata/bench/common.sh — what latency.sh and idmap-rss.sh share (sourced, not run): a
# temporary work directory removed on exit with every server started in it, the binaries,
# the SCIM test server, slapd loaded offline with genldif.go's directory (as resync.sh does),
# and LDAP modifies made from a generated file. Everything on 127.0.0.1.
#
# Before sourcing: ROOT (the checkout) and STEP_TIMEOUT (seconds). SCIMSYNC_BIN, when set,
# is the scimsync binary to measure (e.g. one built from a clean `git worktree` of HEAD while
# others change the checkout); otherwise it is built from the checkout.

[[ -x /usr/bin/time ]] || { echo "$0: needs GNU time: apt-get install -y time" >&2; exit 1; }
for bin in jq curl ldapmodify; do
  command -v "$bin" >/dev/null || { echo "$0: needs $bin" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/scimsync-bench.XXXXXX)
PIDS=() # background processes started here (the delay proxy, a `run`), stopped by PID on exit
bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -d $WORK/scim ]] && "$ROOT/testdata/servers/stop-scim.sh" "$WORK/scim" --rm >/dev/null 2>&1 || true
  for d in "$WORK"/ol-*; do [[ -d $d ]] && "$ROOT/testdata/servers/stop-openldap.sh" "$d" --rm >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# bench_build: $SCIMSYNC (the binary measured) and the helpers, in $WORK.
bench_build() {
  if [[ -n ${SCIMSYNC_BIN:-} ]]; then
    SCIMSYNC=$SCIMSYNC_BIN
  else
    go build -o "$WORK/scimsync" ./cmd/scimsync
    SCIMSYNC=$WORK/scimsync
  fi
  [[ -x $SCIMSYNC ]] || { echo "$0: $SCIMSYNC is not an executable" >&2; exit 1; }
  go build -o "$WORK/scimload" testdata/bench/scimload.go
  go build -o "$WORK/delayproxy" testdata/bench/delayproxy.go
  go build -o "$WORK/genldif" testdata/bench/genldif.go
}

# bench_scim: the SCIM test server, its SCIM_* variables exported; SCIM_ORIGIN and
# SCIM_BASE_PATH split SCIM_URL for the proxy.
bench_scim() {
  testdata/servers/start-scim.sh "$WORK/scim" >/dev/null
  set -a; . "$WORK/scim/env"; set +a
  SCIM_LOOPBACK_URL=$SCIM_URL
  SCIM_ORIGIN=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$SCIM_URL")
  SCIM_BASE_PATH=$(sed -E 's#^https?://[^/]+##' <<<"$SCIM_URL")
}
reset_scim() { curl -fsS -X POST "$SCIM_CONTROL_URL/reset" >/dev/null; }

# bench_slapd N GROUPS MEMBERS: a fresh slapd holding genldif.go's directory, slapadd'ed at
# creation; its LDAP_* variables exported; LDAP_PW_FILE holds the bind password (0600) for
# ldapmodify -y, so that it is on no command line.
bench_slapd() {
  "$WORK/genldif" -n "$1" -groups "$2" -members "$3" >"$WORK/users-$1.ldif"
  local t0; t0=$(date +%s.%N)
  OPENLDAP_SEED_LDIF="$WORK/users-$1.ldif" timeout "$STEP_TIMEOUT" testdata/servers/start-openldap.sh "$WORK/ol-$1" >/dev/null
  SLAPD_LOAD_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  set -a; . "$WORK/ol-$1/env"; set +a
  LDAP_PW_FILE=$WORK/ldap-pw
  (umask 077; printf '%s' "$LDAP_BIND_PW" >"$LDAP_PW_FILE")
  rm -f "$WORK/users-$1.ldif"
}

# modify_titles FROM TO TAG: one LDAP modify per user FROM..TO (genldif.go's numbering),
# replacing its title with "TAG i"; prints the seconds slapd took.
modify_titles() {
  local from=$1 to=$2 tag=$3 f=$WORK/modify-$3.ldif
  awk -v from="$from" -v to="$to" -v tag="$tag" -v base="$LDAP_BASE" 'BEGIN {
    for (i = from; i <= to; i++)
      printf "dn: uid=bench-u%06d,ou=People,%s\nchangetype: modify\nreplace: title\ntitle: %s %d\n\n", i, base, tag, i
  }' >"$f"
  local t0; t0=$(date +%s.%N)
  timeout "$STEP_TIMEOUT" ldapmodify -H "$LDAP_URL" -x -D "$LDAP_BIND_DN" -y "$LDAP_PW_FILE" -f "$f" >/dev/null
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'
  rm -f "$f"
}

# user_title USERNAME: the title the SCIM server holds for a user (loopback, no proxy).
user_title() {
  curl -fsS -G -H "Authorization: Bearer $SCIM_TOKEN" --data-urlencode "filter=userName eq \"$1\"" \
    "$SCIM_LOOPBACK_URL/Users" | jq -r '.Resources[0].title // ""'
}

# elapsed T0: seconds since T0 (from date +%s.%N).
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'; }
