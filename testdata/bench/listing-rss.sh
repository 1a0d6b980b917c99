#!/usr/bin/env bash
# testdata/bench/listing-rss.sh — the memory of resync's listing (issue 15, part 3): the peak
# RSS of `scimsync resync scripts/openldap-to-scim.pipe --workers 4` where nothing differs,
# which lists the endpoints and answers every lookup from the listing, for one or two
# binaries in the same run (before and after a change).
#
# For each N: a fresh slapd loaded with N generated users and N/500 groups of 100
# (genldif.go, slapadd'ed as resync.sh does) and the SCIM test server; then, for each binary
# in turn, from an empty SCIM store and state: a resync into the empty service (to fill it),
# then the resync measured — again, nothing differs — each under /usr/bin/time -v. Prints one
# line per resync and a markdown table.
#
#   testdata/bench/listing-rss.sh [N...]                                  # default 10000
#   BENCH_BEFORE_BIN=/tmp/scimsync-before SCIMSYNC_BIN=/tmp/scimsync-after \
#     BENCH_ROUNDS=2 testdata/bench/listing-rss.sh 10000 100000
# SCIMSYNC_BIN is the binary measured (default: built from this checkout); BENCH_BEFORE_BIN,
# when set, is measured too, first, in each round.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STEP_TIMEOUT=${BENCH_TIMEOUT:-1800}
WORKERS=${BENCH_WORKERS:-4}
ROUNDS=${BENCH_ROUNDS:-1}
(($# > 0)) || set -- 10000
. testdata/bench/common.sh
bench_build
bench_scim

bins=()
[[ -n ${BENCH_BEFORE_BIN:-} ]] && bins+=("before=$BENCH_BEFORE_BIN")
bins+=("after=$SCIMSYNC")
echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores, $(node --version) SCIM server"
rows=()
for N in "$@"; do
  G=$((N / 500)); ((G >= 1)) || G=1
  M=100; ((G * M <= N)) || M=$((N / G))
  bench_slapd "$N" "$G" "$M"
  echo "N=$N: slapd loaded in ${SLAPD_LOAD_S}s; $G groups of $M members"
  for ((round = 1; round <= ROUNDS; round++)); do
    for b in "${bins[@]}"; do
      label=${b%%=*} bin=${b#*=}
      reset_scim
      state=$WORK/state-$label-$N-$round
      for step in create unchanged; do
        /usr/bin/time -v -o "$WORK/time" timeout "$STEP_TIMEOUT" "$bin" resync scripts/openldap-to-scim.pipe \
          --state-dir "$state" --workers "$WORKERS" --progress-interval 600s >"$WORK/out" 2>"$WORK/err" || {
          echo "resync failed:" >&2; tail -5 "$WORK/err" >&2; exit 1; }
        summary=$(grep '^resync: ' "$WORK/err" | tail -1)
        rss=$(($(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time") / 1024))
        echo "  $label, round $round, $step: $summary; peak RSS $rss MiB"
      done
      rows+=("| $N + $G groups | $label | $round | $rss |")
    done
  done
  testdata/servers/stop-openldap.sh "$WORK/ol-$N" --rm >/dev/null
done
echo
echo "| entries | binary | round | resync where nothing differs: peak RSS MiB |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
