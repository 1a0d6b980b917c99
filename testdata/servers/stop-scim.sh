#!/usr/bin/env bash
# stop-scim.sh DATA_DIR [--rm] — stop the scim-server.js that start-scim.sh DATA_DIR started,
# by the PID in DATA_DIR/scim.pid (SIGTERM, SIGKILL after 5 s). Never by process name.
# --rm also deletes DATA_DIR.
set -euo pipefail
DIR=${1:?usage: stop-scim.sh DATA_DIR [--rm]}
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
if [[ -f $DIR/scim.pid ]]; then
  PID=$(cat "$DIR/scim.pid")
  if alive "$PID" && grep -q scim-server.js "/proc/$PID/cmdline" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do alive "$PID" || break; sleep 0.1; done
    if alive "$PID"; then kill -KILL "$PID"; fi
    echo "stopped scim-server pid $PID"
  else
    echo "scim-server pid $PID not running"
  fi
  rm -f "$DIR/scim.pid"
fi
if [[ ${2:-} == --rm ]]; then rm -rf -- "$DIR"; fi
