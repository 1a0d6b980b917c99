#!/usr/bin/env bash
# testdata/bench/resync-bulk.sh — resync into an empty service with Bulk off and on, same run
# (issue 15, parts 4–5). A fresh slapd loaded with N generated users and G groups of M members
# (genldif.go, slapadd'ed offline) and a fresh SCIM test server (SCIMMY; it advertises Bulk,
# 1 000 operations and 1 MiB per request); then, for each mode in turn, each from an empty
# SCIM store: `scimsync resync` of scripts/openldap-to-scim.pipe with `bulk = "off"` or
# `bulk = "auto"` added to its scim block (--workers 4). The SCIM server's own request log
# counts the requests (its sequence number counts past the log's cap). Prints one line per
# mode and a markdown table. Bounded by timeouts, on 127.0.0.1, in a temporary directory.
#
#   testdata/bench/resync-bulk.sh              # N=10000 G=20 M=100
#   BENCH_ROUNDS=2 testdata/bench/resync-bulk.sh 10000 20 100
#
# BENCH_UPDATE=1 measures updates instead: the service is loaded once (bulk "auto"), then for
# each mode in turn every user's title is changed in slapd (ldapmodify) and the mode's resync
# brings it over: N PATCHes, alone (off) or in Bulk requests (auto). Requests are counted from
# the log entries after the resync's first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STEP_TIMEOUT=${BENCH_TIMEOUT:-1200}
WORKERS=${BENCH_WORKERS:-4}
ROUNDS=${BENCH_ROUNDS:-1}
N=${1:-10000} G=${2:-20} M=${3:-100}

WORK=$(mktemp -d /tmp/scimsync-bulkbench.XXXXXX)
cleanup() {
  [[ -d $WORK/scim ]] && testdata/servers/stop-scim.sh "$WORK/scim" --rm >/dev/null 2>&1 || true
  [[ -d $WORK/ol ]] && testdata/servers/stop-openldap.sh "$WORK/ol" --rm >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/scimsync" ./cmd/scimsync
SCIM_LOG_BODIES=0 testdata/servers/start-scim.sh "$WORK/scim" >/dev/null
set -a; . "$WORK/scim/env"; set +a
go run testdata/bench/genldif.go -n "$N" -groups "$G" -members "$M" >"$WORK/users.ldif"
OPENLDAP_SEED_LDIF="$WORK/users.ldif" timeout "$STEP_TIMEOUT" testdata/servers/start-openldap.sh "$WORK/ol" >/dev/null
set -a; . "$WORK/ol/env"; set +a
reset_scim() { curl -fsS -X POST "$SCIM_CONTROL_URL/reset" >/dev/null; }
for mode in off auto; do
  sed "s/^scim {\$/scim {\n  bulk = \"$mode\"/" scripts/openldap-to-scim.pipe >"$WORK/bulk-$mode.pipe"
  grep -q "bulk = \"$mode\"" "$WORK/bulk-$mode.pipe" || { echo "resync-bulk.sh: could not set bulk in the pipe" >&2; exit 1; }
done

echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores, $(node --version) SCIM server; $N users + $G groups of $M"
if [[ ${BENCH_UPDATE:-0} == 1 ]]; then
  reset_scim
  timeout "$STEP_TIMEOUT" "$WORK/scimsync" resync "$WORK/bulk-auto.pipe" --workers "$WORKERS" --state-dir "$WORK/state-load" \
    --progress-interval 600s >/dev/null 2>"$WORK/err-load" || { echo "load failed:" >&2; tail -5 "$WORK/err-load" >&2; exit 1; }
  last_seq() { curl -fsS "$SCIM_CONTROL_URL/requests" | jq '(.[-1].seq // 0)'; }
  rows=()
  for ((round = 1; round <= ROUNDS; round++)); do
    for mode in off auto; do
      for ((i = 1; i <= N; i++)); do
        printf 'dn: uid=bench-u%06d,ou=People,%s\nchangetype: modify\nreplace: title\ntitle: Retitled %s %d\n\n' "$i" "$LDAP_BASE" "$mode" "$round"
      done >"$WORK/retitle.ldif"
      timeout "$STEP_TIMEOUT" ldapmodify -x -H "$LDAP_URL" -D "$LDAP_BIND_DN" -w "$LDAP_BIND_PW" -f "$WORK/retitle.ldif" >/dev/null
      before=$(last_seq)
      timeout "$STEP_TIMEOUT" "$WORK/scimsync" resync "$WORK/bulk-$mode.pipe" --workers "$WORKERS" --state-dir "$WORK/state-upd-$mode-$round" \
        --progress-interval 600s --log-level info >"$WORK/out-$mode" 2>"$WORK/err-$mode" || {
        echo "resync failed:" >&2; tail -5 "$WORK/err-$mode" >&2; exit 1; }
      summary=$(grep '^resync: ' "$WORK/err-$mode" | tail -1)
      curl -fsS "$SCIM_CONTROL_URL/requests" | jq --argjson b "$before" '[.[] | select(.seq > $b)]' >"$WORK/log-$mode.json"
      total=$(jq 'length' "$WORK/log-$mode.json")
      bulk=$(jq '[.[] | select(.method == "POST" and .path == "/Bulk")] | length' "$WORK/log-$mode.json")
      patches=$(jq '[.[] | select(.method == "PATCH")] | length' "$WORK/log-$mode.json")
      reads=$(jq '[.[] | select(.method == "GET" or (.path | endswith("/.search")))] | length' "$WORK/log-$mode.json")
      entries=$((N + G))
      rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$summary")
      secs=$(sed -E 's/.* entries in ([0-9][0-9.hmµs]*s) .*/\1/' <<<"$summary")
      perentry=$(echo "scale=4; $total / $entries" | bc)
      echo "bulk=$mode (every title differs): $summary"
      echo "  requests $total (${perentry}/entry): reads $reads, PATCH $patches, POST /Bulk $bulk"
      rows+=("| $mode | $secs | $rate | $total | $perentry | $reads | $patches | $bulk |")
    done
  done
  echo
  echo "| bulk | wall | entries/s | requests | per entry | reads | PATCH alone | POST /Bulk |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  exit 0
fi
rows=()
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in off auto; do
    reset_scim
    timeout "$STEP_TIMEOUT" "$WORK/scimsync" resync "$WORK/bulk-$mode.pipe" --workers "$WORKERS" --state-dir "$WORK/state-$mode-$round" \
      --progress-interval 600s --log-level info >"$WORK/out-$mode" 2>"$WORK/err-$mode" || {
      echo "resync failed:" >&2; tail -5 "$WORK/err-$mode" >&2; exit 1; }
    summary=$(grep '^resync: ' "$WORK/err-$mode" | tail -1)
    curl -fsS "$SCIM_CONTROL_URL/requests" >"$WORK/log-$mode.json"
    total=$(jq '.[-1].seq' "$WORK/log-$mode.json")
    bulk=$(jq '[.[] | select(.method == "POST" and .path == "/Bulk")] | length' "$WORK/log-$mode.json")
    posts=$(jq '[.[] | select(.method == "POST" and (.path == "/Users" or .path == "/Groups"))] | length' "$WORK/log-$mode.json")
    gets=$(jq '[.[] | select(.method == "GET")] | length' "$WORK/log-$mode.json")
    count=$(curl -fsS "$SCIM_CONTROL_URL/health" | jq '.users + .groups')
    entries=$((N + G))
    rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$summary")
    secs=$(sed -E 's/.* entries in ([0-9][0-9.hmµs]*s) .*/\1/' <<<"$summary")
    perentry=$(echo "scale=3; $total / $entries" | bc)
    writes=$(echo "scale=3; ($bulk + $posts) / $entries" | bc)
    echo "bulk=$mode: $summary"
    echo "  requests $total (${perentry}/entry): GET $gets, POST /Users+/Groups $posts, POST /Bulk $bulk; writes ${writes}/entry; $count resources at the service"
    grep -m1 'ServiceProviderConfig' "$WORK/err-$mode" | cut -c1-400 | sed 's/^/  /' || true
    rows+=("| $mode | $secs | $rate | $total | $perentry | $gets | $((posts + bulk)) ($bulk Bulk) | $writes | $count |")
  done
done
echo
echo "| bulk | wall | entries/s | requests | per entry | lookups (GET) | writes | writes per entry | resources after |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
