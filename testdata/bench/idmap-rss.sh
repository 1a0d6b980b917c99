#!/usr/bin/env bash
# testdata/bench/idmap-rss.sh — the memory of `scimsync run` over a large id map (issue 15:
# "run with a 100 000-entry id map ≤ 100 MiB RSS").
#
# The id map is made the honest way: a real `scimsync resync` of N users and N/500 groups of
# 100 (genldif.go, slapadd'ed into a fresh slapd as resync.sh does) into the SCIM test server,
# through loopback, with the shipped scripts/openldap-to-scim.pipe — the state file is exactly
# what resync writes (about 5 minutes at 100 000 on 2 cores). Then set-startpoint --end and:
#   1. K modifies (every user's title among the first K), `scimsync run --once` under
#      /usr/bin/time -v: its peak RSS;
#   2. `scimsync run` as a service (GODEBUG=gctrace=1): K more modifies made while it runs,
#      and once the last of them is in the SCIM service, its /proc/PID/status (VmHWM peak,
#      VmRSS, and RssAnon / RssFile: Go heap and stacks against the pages of the mapped state
#      file) and the Go heap from its last GC trace lines; then it is stopped (SIGTERM);
#   3. K more modifies and runheap.go (run --once's wiring in a process that writes a heap
#      profile at its peak live heap): what fills the heap, by allocation site (pprof -top).
# Prints the figures and a markdown table.
#
#   testdata/bench/idmap-rss.sh [N] [K]                 # default 100000 users, 100 modifies
#   SCIMSYNC_BIN=/tmp/wt/scimsync BENCH_TREE=/tmp/wt BENCH_TIMEOUT=1800 BENCH_WORKERS=4 \
#     BENCH_HEAP_PROFILE=/tmp/prof testdata/bench/idmap-rss.sh
# BENCH_TREE is the tree runheap.go is built in (its engine is the one profiled; default this
# checkout: with SCIMSYNC_BIN, the tree that binary was built from); BENCH_HEAP_PROFILE, a
# directory where the profiles and the runheap binary are kept (default: removed on exit).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${1:-100000}
K=${2:-100}
WORKERS=${BENCH_WORKERS:-4}
STEP_TIMEOUT=${BENCH_TIMEOUT:-1800}
PIPE=scripts/openldap-to-scim.pipe
[[ $N =~ ^[0-9]+$ && $K =~ ^[0-9]+$ ]] && ((N >= 1 && K >= 1 && 3 * K <= N)) || { echo "usage: $0 [N] [K], 3K <= N" >&2; exit 2; }
G=$((N / 500)); ((G >= 1)) || G=1
M=100; ((G * M <= N)) || M=$((N / G))
. testdata/bench/common.sh

bench_build
(cd "${BENCH_TREE:-$ROOT}" && go build -o "$WORK/runheap" "$ROOT/testdata/bench/runheap.go")
SCIM_LOG_BODIES=0 bench_scim
bench_slapd "$N" "$G" "$M"
state=$WORK/state
echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores; scimsync: $SCIMSYNC"
echo "N=$N users + $G groups of $M; slapd loaded in ${SLAPD_LOAD_S}s"

t0=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/time-resync" timeout "$STEP_TIMEOUT" "$SCIMSYNC" resync "$PIPE" --state-dir "$state" \
  --workers "$WORKERS" --progress-interval 10m >/dev/null 2>"$WORK/err-resync" ||
  { echo "resync failed:" >&2; tail -5 "$WORK/err-resync" >&2; exit 1; }
resync_s=$(elapsed "$t0")
resync_rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-resync")
echo "resync in ${resync_s}s, peak RSS $((resync_rss / 1024)) MiB: $(grep '^resync: ' "$WORK/err-resync" | tail -1)"
"$SCIMSYNC" set-startpoint "$PIPE" --end --state-dir "$state" >/dev/null
ids=$("$SCIMSYNC" status "$PIPE" --json --state-dir "$state" | jq -c '.idMap')
state_bytes=$(stat -c %s "$state"/*.state)
echo "id map: $ids; state file $((state_bytes / 1024)) KiB"

# 1. run --once over K modifies.
tag="Once $(date +%s)"
mod_s=$(modify_titles 1 "$K" "$tag")
t0=$(date +%s.%N)
GODEBUG=gctrace=1 /usr/bin/time -v -o "$WORK/time-once" timeout "$STEP_TIMEOUT" "$SCIMSYNC" run "$PIPE" --once \
  --state-dir "$state" --workers "$WORKERS" --log-format json >/dev/null 2>"$WORK/err-once" ||
  { echo "run --once failed:" >&2; grep -v '^gc ' "$WORK/err-once" | tail -5 >&2; exit 1; }
once_s=$(elapsed "$t0")
once_rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-once")
[[ $(user_title "$(printf 'bench-u%06d' "$K")") == "$tag $K" ]] || { echo "run --once did not apply the modifies" >&2; exit 1; }
# The Go heap at its largest: gctrace's "A->B->C MB" (heap at GC start, at end, live).
heap() {
  awk '/^gc [0-9]+ @/ && match($0, /[0-9]+->[0-9]+->[0-9]+ MB/) {
    split(substr($0, RSTART, RLENGTH - 3), v, "->"); n++
    if (v[1] + 0 > a) a = v[1] + 0
    if (v[3] + 0 > l) l = v[3] + 0
  } END {printf "%d MB heap at GC start, %d MB live, %d GCs", a, l, n}' "$1"
}
echo "run --once, $K modifies (ldapmodify ${mod_s}s): ${once_s}s, peak RSS $((once_rss / 1024)) MiB; Go heap: $(heap "$WORK/err-once")"

# 2. run as a service; K more modifies while it runs.
GODEBUG=gctrace=1 "$SCIMSYNC" run "$PIPE" --state-dir "$state" --workers "$WORKERS" --log-format json \
  >/dev/null 2>"$WORK/err-run" &
run_pid=$!
PIDS+=("$run_pid")
for _ in $(seq 300); do grep -q '"msg":"' "$WORK/err-run" && break; sleep 0.1; done
sleep 2 # past start-up and the source's catch-up
tag="Run $(date +%s)"
mod_s=$(modify_titles $((K + 1)) $((2 * K)) "$tag")
last=$(printf 'bench-u%06d' $((2 * K)))
for _ in $(seq 600); do
  [[ $(user_title "$last") == "$tag $((2 * K))" ]] && break
  kill -0 "$run_pid" 2>/dev/null || { echo "run exited:" >&2; grep -v '^gc ' "$WORK/err-run" | tail -5 >&2; exit 1; }
  sleep 0.2
done
[[ $(user_title "$last") == "$tag $((2 * K))" ]] || { echo "run did not apply the modifies within 120 s" >&2; exit 1; }
status=$(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem):' "/proc/$run_pid/status" | tr -s ' \t' ' ' | paste -sd ';' -)
kb() { sed -E "s/.*$1: ([0-9]+) kB.*/\1/" <<<"$status"; }
kill -TERM "$run_pid"; wait "$run_pid" 2>/dev/null || true
echo "run (service), $K modifies while running (ldapmodify ${mod_s}s): $status; Go heap: $(heap "$WORK/err-run")"

# 3. Where the heap goes: run --once's wiring, profiled at its peak live heap.
prof=${BENCH_HEAP_PROFILE:-$WORK}
mkdir -p "$prof"
[[ $prof == "$WORK" ]] || cp "$WORK/runheap" "$prof/runheap"
tag="Heap $(date +%s)"
mod_s=$(modify_titles $((2 * K + 1)) $((3 * K)) "$tag")
timeout "$STEP_TIMEOUT" "$WORK/runheap" -pipe "$PIPE" -state-dir "$state" -workers "$WORKERS" \
  -out "$prof/run-heap.pprof" 2>"$WORK/err-heap" || { echo "runheap failed:" >&2; tail -5 "$WORK/err-heap" >&2; exit 1; }
[[ $(user_title "$(printf 'bench-u%06d' $((3 * K)))") == "$tag $((3 * K))" ]] || { echo "runheap did not apply the modifies" >&2; exit 1; }
echo "in-use heap at the peak, by allocation site ($prof/run-heap.pprof):"
go tool pprof -top -nodecount=12 -sample_index=inuse_space "$WORK/runheap" "$prof/run-heap.pprof" 2>/dev/null | sed -n '/^Showing\|flat%/,$p'
echo "the same, by function including what it calls:"
go tool pprof -top -cum -nodecount=25 -sample_index=inuse_space "$WORK/runheap" "$prof/run-heap.pprof" 2>/dev/null | sed -n '/flat%/,$p'
echo "everything allocated during the run (alloc_space, $prof/run-heap.pprof.end):"
go tool pprof -top -nodecount=12 -sample_index=alloc_space "$WORK/runheap" "$prof/run-heap.pprof.end" 2>/dev/null | sed -n '/^Showing\|flat%/,$p'

echo
echo "| id map | state file | resync | run --once ($K modifies) peak RSS | run (service) VmHWM | VmRSS = RssAnon + RssFile | Go heap (run service) |"
echo "|---|---|---|---|---|---|---|"
echo "| $N + $G groups | $((state_bytes / 1048576)) MiB | ${resync_s} s, $((resync_rss / 1024)) MiB | $((once_rss / 1024)) MiB | $(($(kb VmHWM) / 1024)) MiB | $(($(kb VmRSS) / 1024)) = $(($(kb RssAnon) / 1024)) + $(($(kb RssFile) / 1024)) MiB | $(heap "$WORK/err-run") |"
