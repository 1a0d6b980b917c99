#!/usr/bin/env bash
# testdata/servers/stop-samba-ad.sh DATA_DIR [--rm]
# Stops the samba started by start-samba-ad.sh DATA_DIR, by the PID recorded in
# DATA_DIR/samba.pid (SIGTERM, then SIGKILL after 10 s), which frees port 389 again. Never
# kills by process name. --rm also deletes DATA_DIR afterwards.
set -euo pipefail
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
DIR=${1:?usage: stop-samba-ad.sh DATA_DIR [--rm]}
if [[ -f $DIR/samba.pid ]]; then
  PID=$(cat "$DIR/samba.pid")
  # only signal it if it is really our samba (guards against a recycled PID)
  if alive "$PID" && grep -q samba "/proc/$PID/cmdline" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 100); do alive "$PID" || break; sleep 0.1; done
    if alive "$PID"; then kill -KILL "$PID"; fi
    echo "stopped samba pid $PID"
  else
    echo "samba pid $PID not running"
  fi
  rm -f "$DIR/samba.pid"
fi
if [[ ${2:-} == --rm ]]; then rm -rf -- "$DIR"; fi
