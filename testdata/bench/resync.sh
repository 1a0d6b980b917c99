#!/usr/bin/env bash
# testdata/bench/resync.sh — the resync benchmark (issue 6): for each N, a fresh slapd
# loaded with N generated users and N/500 groups of 100 members (genldif.go, slapadd'ed
# offline), the SCIM test server (SCIMMY), then, each from an empty SCIM store:
#   1. capacity: the SCIM server's own rate for the requests a resync sends (scimload.go,
#      4 concurrent clients, no engine), then the store is reset;
#   2. resync: `scimsync resync scripts/openldap-to-scim.pipe` (real, --workers 4), under
#      /usr/bin/time -v for the peak RSS;
#   3. resync again (nothing differs: lookups only), and the server's rate for those same
#      lookups (scimload.go lookup).
# Prints one result line per run and a table (markdown) at the end. Everything is bounded
# (timeout per step), on 127.0.0.1, in a temporary directory removed on exit.
#
#   testdata/bench/resync.sh [N...]          # default: 10000
#   BENCH_TIMEOUT=1800 BENCH_ROUNDS=2 testdata/bench/resync.sh 10000 30000
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STEP_TIMEOUT=${BENCH_TIMEOUT:-1200}
WORKERS=${BENCH_WORKERS:-4}
ROUNDS=${BENCH_ROUNDS:-1} # measurements per N, each from an empty store: the spread shows the noise
[[ -x /usr/bin/time ]] || { echo "resync.sh: needs GNU time: apt-get install -y time" >&2; exit 1; }
(($# > 0)) || set -- 10000

WORK=$(mktemp -d /tmp/scimsync-bench.XXXXXX)
cleanup() {
  [[ -d $WORK/scim ]] && testdata/servers/stop-scim.sh "$WORK/scim" --rm >/dev/null 2>&1 || true
  for d in "$WORK"/ol-*; do [[ -d $d ]] && testdata/servers/stop-openldap.sh "$d" --rm >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/scimsync" ./cmd/scimsync
go build -o "$WORK/scimload" testdata/bench/scimload.go
testdata/servers/start-scim.sh "$WORK/scim" >/dev/null
set -a; . "$WORK/scim/env"; set +a
reset_scim() { curl -fsS -X POST "$SCIM_CONTROL_URL/reset" >/dev/null; }
# Warm the server up (Node's JIT): the first thousands of requests are slower.
timeout "$STEP_TIMEOUT" "$WORK/scimload" create 2000 0 0 "$WORKERS" >/dev/null
reset_scim

echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores, $(node --version) SCIM server"
rows=()
for N in "$@"; do
  G=$((N / 500)); ((G >= 1)) || G=1
  M=100; ((G * M <= N)) || M=$((N / G))
  go run testdata/bench/genldif.go -n "$N" -groups "$G" -members "$M" >"$WORK/users-$N.ldif"
  t0=$(date +%s.%N)
  OPENLDAP_SEED_LDIF="$WORK/users-$N.ldif" timeout "$STEP_TIMEOUT" testdata/servers/start-openldap.sh "$WORK/ol-$N" >/dev/null
  load_s=$(echo "$(date +%s.%N) - $t0" | bc)
  set -a; . "$WORK/ol-$N/env"; set +a
  echo "N=$N: slapd created and loaded (slapadd) in ${load_s}s; $G groups of $M members"

  for ((round = 1; round <= ROUNDS; round++)); do
    reset_scim
    cap=$(timeout "$STEP_TIMEOUT" "$WORK/scimload" create "$N" "$G" "$M" "$WORKERS")
    echo "  server alone, $cap"
    reset_scim

    run_resync() { # label
      /usr/bin/time -v -o "$WORK/time-$1" timeout "$STEP_TIMEOUT" "$WORK/scimsync" resync scripts/openldap-to-scim.pipe \
        --workers "$WORKERS" --progress-interval 60s >"$WORK/out-$1" 2>"$WORK/err-$1" || {
        echo "resync failed:" >&2; tail -5 "$WORK/err-$1" >&2; exit 1; }
      summary=$(grep '^resync: ' "$WORK/err-$1" | tail -1)
      rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$1")
      echo "  scimsync $1: $summary; peak RSS $((rss / 1024)) MiB"
    }
    run_resync "create-$N"
    create_rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$summary"); create_rss=$((rss / 1024))
    cap_create=$(sed -E 's/.* = ([0-9]+)\/s entries.*/\1/' <<<"$cap")
    run_resync "unchanged-$N"
    same_rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$summary"); same_rss=$((rss / 1024))
    lcap=$(timeout "$STEP_TIMEOUT" "$WORK/scimload" lookup "$N" "$G" "$M" "$WORKERS")
    echo "  server alone, $lcap"
    cap_same=$(sed -E 's/.* = ([0-9]+)\/s entries.*/\1/' <<<"$lcap")
    rows+=("| $N + $G groups | into an empty service | $create_rate | $cap_create | $((100 * create_rate / cap_create)) % | $create_rss |")
    rows+=("| $N + $G groups | again, nothing differs | $same_rate | $cap_same | $((100 * same_rate / cap_same)) % | $same_rss |")
    reset_scim
  done
  testdata/servers/stop-openldap.sh "$WORK/ol-$N" --rm >/dev/null
  reset_scim
done
echo
echo "| entries | resync | scimsync entries/s | server alone entries/s | ratio | scimsync peak RSS MiB |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
