#!/usr/bin/env bash
# testdata/bench/runcpu.sh — the CPU `scimsync run` spends per change (issue 15: "CPU per change
# ≤ 0.5 ms"). A run backlog drain, as latency.sh's step c makes it: N users and N/500 groups of
# 100 (genldif.go, slapadd'ed into a fresh slapd), one `scimsync resync` of them into the SCIM
# test server (SCIMMY, its own, through loopback) with the shipped scripts/openldap-to-scim.pipe,
# then for each repetition, mode and binary: set-startpoint --end, one ldapmodify of every
# user's title (N modifies), `scimsync run --once` under /usr/bin/time -v. Modes: reads (run
# --shadows=false: each resource read before it is changed) and shadows (run --shadows, the
# default: PATCH from what was last written, one request per change). Reported: scimsync's user+sys CPU seconds of the
# drain (the whole process: start-up, syncrepl, mapping, requests, state writes, logging)
# divided by N, the wall time, the requests the SCIM server received, and a CPU profile of each
# drain (SCIMSYNC_CPUPROFILE, cmd/scimsync/profile.go) with `go tool pprof -top` of the first of
# each mode.
#
# CPU time on a shared machine moves with its load (a drain's CPU per change varies by a third
# from one run to the next here); BENCH_BASE measures a second binary in the same run, its
# drains alternating with the first's on the same servers, for a before/after that compares.
#
#   testdata/bench/runcpu.sh [N]                   # default 10000
#   BENCH_MODES="reads shadows" BENCH_REPEAT=2 BENCH_WORKERS=4 BENCH_TIMEOUT=1800
#   BENCH_PROFILE=/tmp/prof    # keep the profiles there (runcpu-BINARY-MODE-REP.pprof)
#   BENCH_BASE=/tmp/base/scimsync   # also measure that binary ("base"), alternating
#   BENCH_REQUESTS=/tmp/req    # write each drain's requests there (runcpu-BINARY-MODE-REP.txt:
#                              # method, path, body, sorted; ids replaced by userNames and the
#                              # drain's title tag by TAG) to compare two binaries with diff; the
#                              # server's log keeps 20 000 requests, so use a small N
#   SCIMSYNC_BIN=/tmp/wt/scimsync testdata/bench/runcpu.sh   # measure that binary
#
# Everything is on 127.0.0.1, each step bounded by BENCH_TIMEOUT; servers and the temporary
# directory go on exit. Each binary keeps a state directory of its own (a copy of the resync's).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${1:-10000}
MODES=${BENCH_MODES:-reads shadows}
REPEAT=${BENCH_REPEAT:-2}
WORKERS=${BENCH_WORKERS:-4}
STEP_TIMEOUT=${BENCH_TIMEOUT:-1800}
PIPE=scripts/openldap-to-scim.pipe
[[ $N =~ ^[0-9]+$ ]] && ((N >= 1)) || { echo "usage: $0 [N]" >&2; exit 2; }
[[ $REPEAT =~ ^[0-9]+$ ]] && ((REPEAT >= 1)) || { echo "$0: BENCH_REPEAT must be 1 or more" >&2; exit 2; }
for mode in $MODES; do
  [[ $mode == reads || $mode == shadows ]] || { echo "$0: unknown mode $mode (reads, shadows)" >&2; exit 2; }
done
G=$((N / 500)); ((G >= 1)) || G=1
M=100; ((G * M <= N)) || M=$((N / G))
. testdata/bench/common.sh

PROF=${BENCH_PROFILE:-$WORK/prof}
mkdir -p "$PROF"
[[ -z ${BENCH_REQUESTS:-} ]] || mkdir -p "$BENCH_REQUESTS"
bench_build
labels=(scimsync)
bins=("$SCIMSYNC")
if [[ -n ${BENCH_BASE:-} ]]; then
  [[ -x $BENCH_BASE ]] || { echo "$0: BENCH_BASE $BENCH_BASE is not an executable" >&2; exit 1; }
  labels=(base scimsync)
  bins=("$BENCH_BASE" "$SCIMSYNC")
fi
# Bodies are logged only when they are compared.
if [[ -n ${BENCH_REQUESTS:-} ]]; then SCIM_LOG_BODIES=1 bench_scim; else SCIM_LOG_BODIES=0 bench_scim; fi
bench_slapd "$N" "$G" "$M"
echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!bins[@]}"; do echo "# ${labels[i]}: ${bins[i]}"; done
echo "N=$N users + $G groups of $M; slapd loaded in ${SLAPD_LOAD_S}s; workers $WORKERS"

t0=$(date +%s.%N)
timeout "$STEP_TIMEOUT" "$SCIMSYNC" resync "$PIPE" --state-dir "$WORK/state-0" --workers "$WORKERS" \
  --progress-interval 10m >/dev/null 2>"$WORK/err-resync" ||
  { echo "resync failed:" >&2; tail -5 "$WORK/err-resync" >&2; exit 1; }
echo "resync in $(elapsed "$t0")s: $(grep '^resync: ' "$WORK/err-resync" | tail -1)"
for i in "${!bins[@]}"; do
  ((i == 0)) || cp -a "$WORK/state-0" "$WORK/state-$i"
done

server_seq() { curl -fsS "$SCIM_CONTROL_URL/requests" | jq '[.[].seq] | max // 0'; }

# requests FILE SEQ0 TAG: the requests since SEQ0 as sorted lines "METHOD PATH BODY", every
# resource id replaced by its userName or displayName and TAG by "TAG", so that two drains of
# the same mode compare.
requests() {
  curl -fsS "$SCIM_CONTROL_URL/requests" >"$WORK/requests.json"
  curl -fsS "$SCIM_CONTROL_URL/dump" >"$WORK/dump.json"
  jq -r --argjson s "$2" --arg tag "$3" --slurpfile dump "$WORK/dump.json" '
    $dump[0] as $d
    | ([$d.Users[] | {key: .id, value: ("User:" + .userName)}] +
       [$d.Groups[] | {key: .id, value: ("Group:" + .displayName)}] | from_entries) as $ids
    | if (map(.seq) | min // 0) > $s + 1 then error("the server log does not hold the whole drain: use a smaller N")
      else . end
    | map(select(.seq > $s))[]
    | "\(.method) \(.path)\(if .query.filter then "?filter=" + .query.filter else "" end) \(.body // "" | tojson)"
    | gsub("(?<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"; $ids[.id] // "unknown-id")
    | gsub($tag; "TAG")' "$WORK/requests.json" | sort >"$1"
}

# drain I MODE TAG: binary I applies a backlog of N title modifies (TAG i) with `run --once`;
# sets USER_S, SYS_S, WALL_S, REQ, STOPPED and MOD_S. Each drain has its own backlog, so that
# every binary sends the same requests for it.
drain() {
  local i=$1 mode=$2 tag=$3 state=$WORK/state-$1 flags=() seq0 t0
  if [[ $mode == shadows ]]; then flags=(--shadows); else flags=(--shadows=false); fi
  "${bins[i]}" set-startpoint "$PIPE" --end --state-dir "$state" >/dev/null 2>"$WORK/err-sp" ||
    { cat "$WORK/err-sp" >&2; exit 1; }
  MOD_S=$(modify_titles 1 "$N" "$tag")
  seq0=$(server_seq)
  local label=${labels[i]}-$mode-${tag##* }
  t0=$(date +%s.%N)
  SCIMSYNC_CPUPROFILE="$PROF/runcpu-$label.pprof" /usr/bin/time -v -o "$WORK/time" \
    timeout "$STEP_TIMEOUT" "${bins[i]}" run "$PIPE" --once "${flags[@]}" --state-dir "$state" \
    --workers "$WORKERS" --log-format json >/dev/null 2>"$WORK/err-run" ||
    { echo "run --once ($label) failed:" >&2; tail -5 "$WORK/err-run" >&2; exit 1; }
  WALL_S=$(elapsed "$t0")
  REQ=$(($(server_seq) - seq0))
  [[ -z ${BENCH_REQUESTS:-} ]] || requests "$BENCH_REQUESTS/runcpu-$label.txt" "$seq0" "$tag"
  local u got
  for u in 1 "$N"; do # the drain wrote what LDAP holds
    got=$(user_title "$(printf 'bench-u%06d' "$u")")
    [[ $got == "$tag $u" ]] || { echo "after run --once ($label) user $u has title \"$got\", not \"$tag $u\"" >&2; exit 1; }
  done
  read -r USER_S SYS_S < <(awk -F': ' '/User time \(seconds\)/ {u = $2} /System time \(seconds\)/ {s = $2} END {print u, s}' "$WORK/time")
  STOPPED=$(grep '"msg":"stopped"' "$WORK/err-run" | jq -r '"applied \(.applied), unchanged \(.unchanged), parked \(.parked)"' || true)
}

# Shadows come from the answers to run's own writes (a Bulk resync keeps none): when the first
# mode measured is shadows, an unmeasured read-first drain gives every user one first.
if [[ ${MODES%% *} == shadows ]]; then
  for i in "${!bins[@]}"; do
    drain "$i" reads "runcpu prime ${labels[i]} 0"
    echo "primed the shadows of ${labels[i]}: $STOPPED"
  done
fi

rows=()
for rep in $(seq "$REPEAT"); do
  for mode in $MODES; do
    for i in "${!bins[@]}"; do
      drain "$i" "$mode" "runcpu $mode ${labels[i]} $rep"
      # One PATCH per change with shadows, a GET and a PATCH without: anything else is another drain.
      want=$N; [[ $mode == reads ]] && want=$((2 * N))
      ((REQ == want)) || echo "  warning: ${labels[i]} $mode #$rep sent $REQ requests, not $want: not the drain this measures" >&2
      ms=$(awk -v u="$USER_S" -v s="$SYS_S" -v n="$N" 'BEGIN {printf "%.3f", (u + s) * 1000 / n}')
      rows+=("$(printf '| %s | %s | %d | %d | %.2f | %.2f | %s | %.1f | %d |' "${labels[i]}" "$mode" "$rep" "$N" \
        "$USER_S" "$SYS_S" "$ms" "$WALL_S" "$REQ")")
      echo "${labels[i]} $mode #$rep: ldapmodify ${MOD_S}s; run --once ${WALL_S}s, user ${USER_S}s sys ${SYS_S}s = $ms ms CPU per change; $REQ requests; $STOPPED"
    done
  done
done

last=$((${#bins[@]} - 1))
for mode in $MODES; do
  echo
  echo "## go tool pprof -top -nodecount=25 $PROF/runcpu-${labels[last]}-$mode-1.pprof"
  go tool pprof -top -nodecount=25 "$PROF/runcpu-${labels[last]}-$mode-1.pprof" 2>/dev/null
done

echo
echo "| binary | mode | rep | changes | user s | sys s | CPU ms per change | wall s | requests |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
