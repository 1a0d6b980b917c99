#!/usr/bin/env bash
# testdata/servers/stop-openldap.sh DATA_DIR [--rm]
# Stops the slapd started by start-openldap.sh DATA_DIR, by the PID recorded in
# DATA_DIR/slapd.pid (SIGTERM, then SIGKILL after 10 s). Never kills by process name.
# --rm also deletes DATA_DIR afterwards.
set -euo pipefail
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
DIR=${1:?usage: stop-openldap.sh DATA_DIR [--rm]}
PIDFILE="$DIR/slapd.pid"
[[ -f $PIDFILE ]] || PIDFILE="$DIR/slapd.pid.launcher"
if [[ -f $PIDFILE ]]; then
  PID=$(cat "$PIDFILE")
  # only signal it if it is really our slapd (guards against a recycled PID)
  if alive "$PID" && grep -q slapd "/proc/$PID/cmdline" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 100); do alive "$PID" || break; sleep 0.1; done
    if alive "$PID"; then kill -KILL "$PID"; fi
    echo "stopped slapd pid $PID"
  else
    echo "slapd pid $PID not running"
  fi
fi
if [[ ${2:-} == --rm ]]; then rm -rf -- "$DIR"; fi
