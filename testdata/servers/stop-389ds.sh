#!/usr/bin/env bash
# testdata/servers/stop-389ds.sh DATA_DIR [--rm]
# Stops the ns-slapd started by start-389ds.sh DATA_DIR, by the PID in DATA_DIR/ds.pid:
# SIGTERM (clean shutdown, flushes the database), SIGKILL only after 60 s. Never by name.
# --rm also deletes DATA_DIR afterwards.
set -euo pipefail
DIR=${1:?usage: stop-389ds.sh DATA_DIR [--rm]}
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
if [[ -f $DIR/ds.pid ]]; then
  PID=$(cat "$DIR/ds.pid")
  if alive "$PID" && grep -q ns-slapd "/proc/$PID/cmdline" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 600); do alive "$PID" || break; sleep 0.1; done
    if alive "$PID"; then kill -KILL "$PID"; echo "ns-slapd $PID killed (SIGKILL)"; fi
    echo "stopped ns-slapd pid $PID"
  else
    echo "ns-slapd pid $PID not running"
  fi
  rm -f "$DIR/ds.pid"
fi
if [[ ${2:-} == --rm ]]; then rm -rf -- "$DIR"; fi
