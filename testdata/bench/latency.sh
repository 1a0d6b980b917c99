#!/usr/bin/env bash
# testdata/bench/latency.sh — requests are time (issue 15, part 7). At a SaaS service's round
# trip a sync's time is requests × RTT ÷ concurrency, so this measures, in one run, the requests
# scimsync sends for three pieces of work and its rate through loopback and through a delay
# proxy (delayproxy.go, BENCH_RTT, default 50 ms added to every request, each on its own), beside
# a plain loop (scimload.go) that sends the minimal request set for the same work at the same
# concurrency:
#
#   a. `scimsync resync` into an empty service  |  loop: one POST per user, one per group
#                                                 (with its members)
#   b. `scimsync resync` again, nothing differs |  loop: GET /Users and /Groups in pages of 200
#   c. a `run` backlog drain: set-startpoint --end, one ldapmodify of every user's title (M = N
#      modifies), then `scimsync run --once`     |  loop: one PATCH per modify
#
# The directory: N users and N/500 groups of 100 (genldif.go, slapadd'ed into a fresh slapd by
# start-openldap.sh with OPENLDAP_SEED_LDIF, as resync.sh does), read with syncrepl by the
# shipped scripts/openldap-to-scim.pipe; the SCIM test server (SCIMMY) of its own, request log
# without bodies (SCIM_LOG_BODIES=0). Before each scimsync step the SCIM store and the state are
# as the step needs them (a: both empty; each transport starts from an empty store and state).
#
# Requests counted: through the proxy, its own exact counter by method and shape; through
# loopback, the SCIM server's request sequence numbers (exact; the by-shape breakdown is given
# when the server's log, which keeps the last 20 000, holds the whole step). The loop counts its
# own. Time is the wall time of each scimsync command (start-up, LDAP reads and all) and of the
# loop's requests. floor = requests × RTT ÷ workers: the least time those requests can take at
# that round trip with that many in flight.
#
#   testdata/bench/latency.sh [N]                        # default 10000
#   SCIMSYNC_BIN=/tmp/wt/scimsync testdata/bench/latency.sh 10000   # measure that binary
#   BENCH_RTT=50ms BENCH_WORKERS=4 BENCH_TIMEOUT=1800 BENCH_TRANSPORTS="loopback proxy"
#   BENCH_BULK=auto   # the pipe with bulk = "auto" in its scim block (the binary must know it)
#   BENCH_RUN_ARGS=--shadows=false   # more arguments for step c's `run` (here: read each resource first)
#   BENCH_SKIP_B=1    # leave step b out: c then follows a straight after (what a Bulk load
#                       leaves behind, without the shadows a nothing-differs resync records)
#
# Prints a line per step and a markdown table at the end. Everything is on 127.0.0.1, every step
# bounded by BENCH_TIMEOUT, and the servers and temporary directory go on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${1:-10000}
RTT=${BENCH_RTT:-50ms}
WORKERS=${BENCH_WORKERS:-4}
STEP_TIMEOUT=${BENCH_TIMEOUT:-1800}
TRANSPORTS=${BENCH_TRANSPORTS:-loopback proxy}
PIPE=scripts/openldap-to-scim.pipe
[[ $N =~ ^[0-9]+$ ]] && ((N >= 1)) || { echo "usage: $0 [N]" >&2; exit 2; }
G=$((N / 500)); ((G >= 1)) || G=1
M=100; ((G * M <= N)) || M=$((N / G))
. testdata/bench/common.sh

bench_build
if [[ -n ${BENCH_BULK:-} ]]; then # the pipe with `bulk = "…"` in its scim block (off, auto, on)
  sed "s/^scim {\$/scim {\n  bulk = \"$BENCH_BULK\"/" "$PIPE" >"$WORK/bench.pipe"
  grep -q "bulk = \"$BENCH_BULK\"" "$WORK/bench.pipe" || { echo "$0: could not set bulk in the pipe" >&2; exit 1; }
  PIPE=$WORK/bench.pipe
fi
SCIM_LOG_BODIES=0 bench_scim
bench_slapd "$N" "$G" "$M"
RTT_S=$("$WORK/delayproxy" -rtt "$RTT" -print-rtt)
"$WORK/delayproxy" -target "$SCIM_ORIGIN" -rtt "$RTT" >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^listening ' "$WORK/proxy.out" && break; sleep 0.1; done
PROXY=$(sed -n 's/^listening //p' "$WORK/proxy.out")
[[ -n $PROXY ]] || { echo "delay proxy did not start:" >&2; cat "$WORK/proxy.err" >&2; exit 1; }

# Warm the server up (Node's JIT): the first thousands of requests are slower.
timeout "$STEP_TIMEOUT" "$WORK/scimload" create 2000 0 0 "$WORKERS" >/dev/null
reset_scim

echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3-) $(nproc) cores, $(node --version) SCIM server; scimsync: $SCIMSYNC"
echo "N=$N users + $G groups of $M; slapd loaded in ${SLAPD_LOAD_S}s; workers $WORKERS; proxy RTT $RTT at $PROXY; bulk ${BENCH_BULK:-as the pipe says}; run ${BENCH_RUN_ARGS:-(no arguments)}${BENCH_SKIP_B:+; step b left out}"

# Request counting. count_begin notes where the server's request sequence is and clears its
# log; count_end prints "TOTAL BREAKDOWN" for the requests since: through the proxy its own
# counter (and the server's total must agree), through loopback the server's sequence.
server_log() { curl -fsS "$SCIM_CONTROL_URL/requests"; }
count_begin() {
  SEQ0=$(server_log | jq '[.[].seq] | max // 0')
  curl -fsS -X DELETE "$SCIM_CONTROL_URL/requests" >/dev/null
  curl -fsS -X POST "$PROXY/_proxy/reset" >/dev/null
}
count_end() { # transport
  local server by
  read -r server by < <(server_log | jq -r --argjson s "$SEQ0" '
    (map(.seq) | max // $s) as $last
    | (map(if .method != "GET" then .method
           elif .query.filter != null then "GET filter"
           elif (.path | test("^/(Users|Groups)/?$")) then "GET list"
           elif (.path | test("^/(Users|Groups)/")) then "GET id"
           else "GET other" end)
       | group_by(.) | map("\(.[0])=\(length)") | join(",")) as $by
    | "\($last - $s) \(if length == $last - $s then $by else "by shape unknown: the log holds the last \(length)" end)"')
  if [[ $1 == proxy ]]; then
    local p; p=$(curl -fsS "$PROXY/_proxy/stats")
    local total; total=$(jq '.requests' <<<"$p")
    ((total == server)) || echo "  warning: the proxy counted $total requests, the server $server" >&2
    echo "$total $(jq -r '.byKind | to_entries | map("\(.key)=\(.value)") | join(",")' <<<"$p")"
  else
    echo "$server $by"
  fi
}

rows=()
# row STEP TRANSPORT ENTRIES REQ SECONDS LOOP_REQ LOOP_SECONDS RSS_KB
row() {
  local rtt=$RTT_S
  [[ $2 == loopback ]] && rtt=0
  rows+=("$(awk -v step="$1" -v tr="$2" -v e="$3" -v r="$4" -v s="$5" -v lr="$6" -v ls="$7" -v rss="$8" \
    -v rtt="$rtt" -v w="$WORKERS" -v rttname="$RTT" 'BEGIN {
      rate = e / s; lrate = e / ls
      floor = (rtt > 0) ? sprintf("%.1f · %.1f", r * rtt / w, lr * rtt / w) : "—"
      printf "| %s | %s | %d | %.3f | %.1f | %.0f | %d | %.3f | %.1f | %.0f | %.2f× | %s | %d |",
        step, (tr == "proxy" ? rttname : "loopback"), r, r / e, s, rate, lr, lr / e, ls, lrate, rate / lrate, floor, rss / 1024
    }')")
}

# loop MODE ENTRIES: the plain loop's "REQ SECONDS" for MODE.
loop() {
  local out
  out=$(timeout "$STEP_TIMEOUT" "$WORK/scimload" "$1" "$N" "$G" "$M" "$WORKERS")
  echo "  loop      $out" >&2
  grep -q ', 0 failed$' <<<"$out" || { echo "loop $1 failed: $out" >&2; exit 1; }
  sed -E 's/.* entries, ([0-9]+) requests in ([0-9.]+) s .*/\1 \2/' <<<"$out"
}

# scimsync LABEL ARGS...: runs scimsync under /usr/bin/time, sets SECONDS_TAKEN and RSS_KB.
scimsync() {
  local label=$1; shift
  local t0; t0=$(date +%s.%N)
  if ! /usr/bin/time -v -o "$WORK/time-$label" timeout "$STEP_TIMEOUT" "$SCIMSYNC" "$@" \
    >"$WORK/out-$label" 2>"$WORK/err-$label"; then
    echo "scimsync $label failed:" >&2; tail -5 "$WORK/err-$label" >&2; exit 1
  fi
  SECONDS_TAKEN=$(elapsed "$t0")
  RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$label")
}

for tr in $TRANSPORTS; do
  case $tr in
  loopback) url=$SCIM_LOOPBACK_URL ;;
  proxy) url=$PROXY$SCIM_BASE_PATH ;;
  *) echo "unknown transport $tr (loopback, proxy)" >&2; exit 2 ;;
  esac
  echo "## $tr ($url)"

  # The plain loop: the minimal request set for each step, on a store of its own.
  reset_scim
  out=$(SCIM_URL=$url loop post); read -r la_req la_s <<<"$out"
  out=$(SCIM_URL=$url loop list); read -r lb_req lb_s <<<"$out"
  out=$(SCIM_URL=$url loop patch); read -r lc_req lc_s <<<"$out"
  reset_scim

  state=$WORK/state-$tr
  export SCIM_URL=$url
  count_begin
  scimsync "a-$tr" resync "$PIPE" --state-dir "$state" --workers "$WORKERS" --progress-interval 10m
  out=$(count_end "$tr"); read -r req by <<<"$out"
  echo "  scimsync  a. into an empty service: $req requests ($by) in ${SECONDS_TAKEN}s; $(grep '^resync: ' "$WORK/err-a-$tr" | tail -1)"
  row "a. resync into an empty service" "$tr" $((N + G)) "$req" "$SECONDS_TAKEN" "$la_req" "$la_s" "$RSS_KB"

  if [[ -z ${BENCH_SKIP_B:-} ]]; then
  count_begin
  scimsync "b-$tr" resync "$PIPE" --state-dir "$state" --workers "$WORKERS" --progress-interval 10m
  out=$(count_end "$tr"); read -r req by <<<"$out"
  echo "  scimsync  b. again, nothing differs: $req requests ($by) in ${SECONDS_TAKEN}s; $(grep '^resync: ' "$WORK/err-b-$tr" | tail -1)"
  row "b. resync, nothing differs" "$tr" $((N + G)) "$req" "$SECONDS_TAKEN" "$lb_req" "$lb_s" "$RSS_KB"
  fi

  "$SCIMSYNC" set-startpoint "$PIPE" --end --state-dir "$state" >/dev/null 2>"$WORK/err-sp-$tr" ||
    { cat "$WORK/err-sp-$tr" >&2; exit 1; }
  tag="Title $tr $(date +%s)"
  mod_s=$(modify_titles 1 "$N" "$tag")
  count_begin
  # shellcheck disable=SC2086 # BENCH_RUN_ARGS: words
  scimsync "c-$tr" run "$PIPE" --once --state-dir "$state" --workers "$WORKERS" --log-format json ${BENCH_RUN_ARGS:-}
  out=$(count_end "$tr"); read -r req by <<<"$out"
  stopped=$(grep '"msg":"stopped"' "$WORK/err-c-$tr" | jq -r '"applied \(.applied), unchanged \(.unchanged), parked \(.parked)"' || true)
  echo "  scimsync  c. run --once after $N modifies (ldapmodify ${mod_s}s): $req requests ($by) in ${SECONDS_TAKEN}s; $stopped"
  for u in 1 "$N"; do # the drain wrote what LDAP holds
    got=$(user_title "$(printf 'bench-u%06d' "$u")")
    [[ $got == "$tag $u" ]] || { echo "after run --once user $u has title \"$got\", not \"$tag $u\"" >&2; exit 1; }
  done
  row "c. run backlog drain ($N modifies)" "$tr" "$N" "$req" "$SECONDS_TAKEN" "$lc_req" "$lc_s" "$RSS_KB"
  unset SCIM_URL
  export SCIM_URL=$SCIM_LOOPBACK_URL
done

echo
echo "| step | RTT | scimsync requests | per entry | scimsync s | scimsync entries/s | loop requests | loop per entry | loop s | loop entries/s | ratio | floor s (scimsync · loop) | scimsync peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
