#!/usr/bin/env bash
# start-samba-ad.sh — start a throwaway Samba Active Directory domain controller on 127.0.0.1
# for the DirSync tests (1.2.840.113556.1.4.841), LDAP service only.
#
# Usage:  testdata/servers/start-samba-ad.sh [DATA_DIR]
#   DATA_DIR  where the provisioned domain, smb.conf, logs and PID go.
#             Default: a fresh mktemp dir under ${TMPDIR:-/tmp}. If DATA_DIR already holds a
#             domain provisioned by this script, samba is just started again with the same data.
# Env (all optional):
#   SAMBA_ADMIN_PW  the Administrator's password (default Passw0rd!Passw0rd; AD's complexity
#                   rules apply, and it must not contain a single quote)
#   SAMBA_REALM     default EXAMPLE.COM: domain EXAMPLE, base DN DC=example,DC=com
#
# Limits, which are Samba's:
#   * Samba's LDAP server has no port setting: it always binds 389 (and 636, 3268, 3269 for
#     LDAPS and the global catalog). So it needs root (or CAP_NET_BIND_SERVICE), and one
#     instance runs per network namespace. The script stops with a message saying so when it is
#     not root or when something already listens on 127.0.0.1:389. `interfaces = lo` and
#     `bind interfaces only = yes` keep it on 127.0.0.1 and ::1.
#   * Simple binds over plain LDAP are refused by default ("Transport encryption required"):
#     smb.conf gets `ldap server require strong auth = no` (test-only; provision does not keep
#     the --option, so the file is edited afterwards).
#   * Only the "ldap" service runs (no smbd, KDC, DNS, winbind, replication): DirSync, paged
#     search and the show-deleted control work; Kerberos binds do not.
#   * `pid directory` and `log file` point into DATA_DIR, so nothing is written to /run/samba or
#     /var/log/samba; /etc/samba is not touched.
#
# On success prints KEY='VALUE' lines (also written to DATA_DIR/env, sourceable):
#   LDAP_URL LDAP_BASE LDAP_BIND_DN LDAP_BIND_PW SAMBA_PID DATA_DIR
#   PROVISION_SECONDS (0 when the domain already existed) STARTUP_SECONDS (start until the root
#   DSE answers)
# Stop with: stop-samba-ad.sh DATA_DIR   (kills the PID in DATA_DIR/samba.pid; never by name)
# Adapted from the team harness; owned by this repository.
set -euo pipefail

ADMIN_PW=${SAMBA_ADMIN_PW:-Passw0rd!Passw0rd}
REALM=${SAMBA_REALM:-EXAMPLE.COM}
REALM=${REALM^^}
DOMAIN=${REALM%%.*}
BASE_DN=$(printf 'DC=%s' "${REALM,,}" | sed 's/\./,DC=/g')
SAMBA=${SAMBA:-/usr/sbin/samba}
SAMBA_TOOL=${SAMBA_TOOL:-/usr/bin/samba-tool}

for bin in "$SAMBA" "$SAMBA_TOOL" /usr/bin/ldapsearch; do
  [[ -x $bin ]] || {
    echo "missing $bin: apt-get install -y samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldap-utils" >&2
    exit 1
  }
done
[[ $ADMIN_PW != *"'"* ]] || { echo "SAMBA_ADMIN_PW must not contain a single quote" >&2; exit 1; }
if [[ $(id -u) != 0 ]]; then
  echo "Samba AD always binds port 389 (it has no port setting): run this script as root" >&2
  exit 2
fi

alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- data directory -------------------------------------------------------------------------
DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/samba-ad.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
REUSE=
if [[ -e $DIR/etc/smb.conf ]]; then
  [[ -f $DIR/realm ]] || { echo "$DIR holds an smb.conf not made by this script" >&2; exit 1; }
  if [[ -f $DIR/samba.pid ]] && alive "$(cat "$DIR/samba.pid")"; then
    echo "samba already running from $DIR (pid $(cat "$DIR/samba.pid"))" >&2; exit 1
  fi
  REALM=$(cat "$DIR/realm")
  DOMAIN=${REALM%%.*}
  BASE_DN=$(printf 'DC=%s' "${REALM,,}" | sed 's/\./,DC=/g')
  REUSE=1
fi

# Port 389 is fixed: say who holds it rather than letting samba fail in its log.
for port in 389 636 3268 3269; do
  if port_in_use "$port"; then
    holder=$( (ss -Hltnp "sport = :$port" 2>/dev/null || true) | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 | sed 's/users:(("//; s/",pid=/ pid /')
    echo "port $port on 127.0.0.1 is already in use${holder:+ by $holder}; Samba AD cannot use another port" \
      "(stop that server first, e.g. testdata/servers/stop-samba-ad.sh DATA_DIR for an earlier Samba)" >&2
    exit 1
  fi
done

# --- provision (first time) -----------------------------------------------------------------
PROVISION_SECONDS=0
if [[ -z $REUSE ]]; then
  T0=$(date +%s.%N)
  # /usr/bin/python3 explicitly: samba-tool needs Debian's python (python3-samba), and a
  # python3 earlier in PATH (pyenv) lacks it. --dns-backend=NONE: no DNS zone, no dns-* account.
  if ! /usr/bin/python3 "$SAMBA_TOOL" domain provision --targetdir="$DIR" \
    --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE \
    --adminpass="$ADMIN_PW" --use-rfc2307 --host-ip=127.0.0.1 --host-name=dc1 \
    --option="interfaces = lo" --option="bind interfaces only = yes" >"$DIR/provision.log" 2>&1; then
    echo "samba-tool domain provision failed; $DIR/provision.log ends:" >&2
    tail -30 "$DIR/provision.log" >&2
    exit 1
  fi
  # Keep everything inside DIR and run only the LDAP service: drop provision's lines for these
  # settings and put ours first in [global].
  sed -i -E -e '/^[[:space:]]*(server services|log file|pid directory|ldap server require strong auth)[[:space:]]*=/d' \
    -e 's#^\[global\]$#&\n\tserver services = ldap\n\tldap server require strong auth = no\n\tpid directory = '"$DIR"'/run\n\tlog file = '"$DIR"'/log.%m#' \
    "$DIR/etc/smb.conf"
  grep -q 'server services = ldap' "$DIR/etc/smb.conf" ||
    { echo "$DIR/etc/smb.conf has no [global] section to edit" >&2; exit 1; }
  mkdir -p "$DIR/run"
  echo "$REALM" >"$DIR/realm"
  T1=$(date +%s.%N)
  PROVISION_SECONDS=$(awk "BEGIN{printf \"%.2f\", $T1-$T0}")
fi

# --- start ----------------------------------------------------------------------------------
T2=$(date +%s.%N)
# -i: interactive (foreground, logs to stdout), -M single: one process, so $! is samba itself.
nohup "$SAMBA" -i -M single -s "$DIR/etc/smb.conf" >>"$DIR/samba.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$DIR/samba.pid"
READY=
for _ in $(seq 1 300); do
  if /usr/bin/ldapsearch -x -LLL -H ldap://127.0.0.1:389 -b "" -s base defaultNamingContext >/dev/null 2>&1; then
    READY=1; break
  fi
  if ! alive "$PID"; then
    echo "samba exited during startup; $DIR/samba.log ends:" >&2; tail -30 "$DIR/samba.log" >&2; exit 1
  fi
  sleep 0.1
done
if [[ -z $READY ]]; then
  echo "samba not ready after 30 s; $DIR/samba.log ends:" >&2; tail -30 "$DIR/samba.log" >&2
  kill "$PID"; exit 1
fi
T3=$(date +%s.%N)

cat >"$DIR/env" <<EOF
LDAP_URL='ldap://127.0.0.1:389'
LDAP_BASE='$BASE_DN'
LDAP_BIND_DN='Administrator@${REALM,,}'
LDAP_BIND_PW='$ADMIN_PW'
SAMBA_PID='$PID'
DATA_DIR='$DIR'
PROVISION_SECONDS='$PROVISION_SECONDS'
STARTUP_SECONDS='$(awk "BEGIN{printf \"%.2f\", $T3-$T2}")'
EOF
cat "$DIR/env"
