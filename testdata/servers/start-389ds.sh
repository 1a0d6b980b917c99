#!/usr/bin/env bash
# start-389ds.sh — create (first time) and start a throwaway 389 Directory Server on
# 127.0.0.1 with the Retro Changelog (cn=changelog, draft-good-ldap-changelog format) and the
# Content Synchronization plugin (RFC 4533 syncrepl provider) enabled. No systemd, no files
# outside DATA_DIR, no /etc/dirsrv changes; works as root or as a normal user.
#
# Usage:  testdata/servers/start-389ds.sh [DATA_DIR]
#   DATA_DIR  default: a fresh mktemp dir under ${TMPDIR:-/tmp}. If DATA_DIR already holds an
#             instance made by this script, it is just started again (data and changelog kept).
# Env (all optional):
#   DS389_PORT        LDAP port on 127.0.0.1 (default 13389; next free one if taken,
#                     unless DS389_PORT_STRICT=1). Only used when the instance is created.
#   DS389_SUFFIX      default dc=example,dc=com
#   DS389_DM_PW       cn=Directory Manager password, >= 8 chars (default Secret123)
#   DS389_INSTANCE    instance name (default scimsync)
#   DS389_SEED_LDIF   LDIF added (ldapadd) once the new instance runs (default:
#                     testdata/ldap/base.ldif, which assumes dc=example,dc=com; /dev/null: none)
#   DS389_DEBUG       ns-slapd -d level (default 266354688 = the server default error-log level;
#                     with -d 0 nothing at all is written to the errors log)
#   DS389_UNHASHED_PW nsslapd-unhashed-pw-switch (default on): the Retro Changelog records the
#                     clear text of each password change as unhashed#user#password in the
#                     changes attribute, which scimsync's password sync reads (README, "Password
#                     sync"). off: no clear text anywhere; nolog: not in the changelog either.
#                     Set at every start (the attribute is dynamic), so a kept instance follows it.
#
# How it avoids systemd and global paths (the gotchas: ../shared/docs/servers.md §3 and §7):
#   * lib389 (dscreate/dsctl/dsconf) finds instances only via <PREFIX>/etc/dirsrv/slapd-NAME/
#     dse.ldif and reads its defaults from <PREFIX>/share/dirsrv/inf/defaults.inf, PREFIX taken
#     from the environment. We build a private PREFIX=DATA_DIR holding a copy of defaults.inf with
#     every state/config path moved under DATA_DIR and with_systemd = 0 (the same idea as the
#     upstream `dscreate ds-root`, whose hard-coded /usr/lib64 paths are wrong on Debian).
#   * dscreate copies <sysconf_dir>/dirsrv/{schema,config}: we copy /etc/dirsrv/{schema,config}.
#   * the dse.ldif template is copied into DATA_DIR/share and patched BEFORE dscreate, so the very
#     first start already listens on 127.0.0.1 only (nsslapd-listenhost) and has the Retro
#     Changelog (with nsUniqueId and entryUUID of the target copied into each changelog entry)
#     and Content Synchronization plugins on.
#   * dscreate starts/stops the server itself (daemonised) while it configures it; afterwards
#     we run ns-slapd in the foreground (-d) as a plain background process so $! is its PID.
#
# Prints KEY=VALUE lines (also in DATA_DIR/env):
#   LDAP_URL LDAPI_URL LDAP_BASE LDAP_BIND_DN LDAP_BIND_PW LDAP_CHANGELOG_BASE DS_PID DATA_DIR
#   CREATE_SECONDS (0 when reused) STARTUP_SECONDS
# Stop with: stop-389ds.sh DATA_DIR
# Adapted from the team harness; owned by this repository.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEED_LDIF=${DS389_SEED_LDIF-$HERE/../ldap/base.ldif}

INSTANCE=${DS389_INSTANCE:-scimsync}
SUFFIX=${DS389_SUFFIX:-dc=example,dc=com}
DM_PW=${DS389_DM_PW:-Secret123}
DEBUG_LEVEL=${DS389_DEBUG:-266354688}
UNHASHED_PW=${DS389_UNHASHED_PW:-on}
case $UNHASHED_PW in on|off|nolog) ;; *) echo "DS389_UNHASHED_PW must be on, off or nolog" >&2; exit 1;; esac
NS_SLAPD=/usr/sbin/ns-slapd

for bin in "$NS_SLAPD" /usr/sbin/dscreate /usr/bin/ldapsearch; do
  [[ -x $bin ]] || { echo "missing $bin: apt-get install -y 389-ds-base ldap-utils" >&2; exit 1; }
done
(( ${#DM_PW} >= 8 )) || { echo "DS389_DM_PW must be at least 8 characters" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }

DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/389ds.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CONF="$DIR/etc/dirsrv/slapd-$INSTANCE"
PIDFILE="$DIR/run/dirsrv/slapd-$INSTANCE.pid"
LOGDIR="$DIR/var/log/dirsrv/slapd-$INSTANCE"
SOCK="$DIR/run/slapd-$INSTANCE.socket"
(( ${#SOCK} < 100 )) || { echo "DATA_DIR path too long for a unix socket: $DIR" >&2; exit 1; }

if [[ -f $DIR/ds.pid ]] && alive "$(cat "$DIR/ds.pid")"; then
  echo "389-ds already running from $DIR (pid $(cat "$DIR/ds.pid"))" >&2; exit 1
fi

CREATE_SECONDS=0
if [[ ! -f $CONF/dse.ldif ]]; then
  T0=$(date +%s.%N)
  PORT=${DS389_PORT:-13389}
  if port_in_use "$PORT"; then
    if [[ ${DS389_PORT_STRICT:-0} == 1 ]]; then echo "port $PORT in use" >&2; exit 1; fi
    for _ in $(seq 1 200); do PORT=$((PORT + 1)); port_in_use "$PORT" || break; done
  fi
  SECURE_PORT=$((PORT + 1))   # recorded in config only; TLS stays off so nothing listens there
  while port_in_use "$SECURE_PORT"; do SECURE_PORT=$((SECURE_PORT + 1)); done

  # --- private PREFIX ------------------------------------------------------------------------
  mkdir -p "$DIR/share/dirsrv/inf" "$DIR/etc/dirsrv" "$DIR/tmp"
  cp -r /etc/dirsrv/schema /etc/dirsrv/config "$DIR/etc/dirsrv/"
  cp -r /usr/share/dirsrv/data "$DIR/share/dirsrv/"
  sed -e "s#^sysconf_dir = /etc#sysconf_dir = $DIR/etc#" \
      -e "s#= /etc/dirsrv#= $DIR/etc/dirsrv#" \
      -e "s#= /etc/default#= $DIR/etc/default#" \
      -e "s#= /run#= $DIR/run#" \
      -e "s#= /var#= $DIR/var#" \
      -e "s#^tmp_dir = /tmp#tmp_dir = $DIR/tmp#" \
      -e "s#= /dev/shm/#= $DIR/var/dbhome/#" \
      -e "s#^tmpfiles_d = .*#tmpfiles_d = $DIR/etc/tmpfiles.d#" \
      -e "s#^inst_dir = .*#inst_dir = $DIR/var/lib/dirsrv/slapd-{instance_name}#" \
      -e "s#^data_dir = .*#data_dir = $DIR/share#" \
      -e "s#^with_systemd = .*#with_systemd = 0#" \
      -e "s#^with_selinux = .*#with_selinux = no#" \
      /usr/share/dirsrv/inf/defaults.inf > "$DIR/share/dirsrv/inf/defaults.inf"

  # --- patch the dse.ldif template (python: LDIF-aware, entry by entry) ----------------------
  /usr/bin/python3 - "$DIR/share/dirsrv/data/template-dse.ldif" <<'PY'
import sys, re
path = sys.argv[1]
text = open(path).read()
entries = text.split("\n\n")
out = []
for e in entries:
    first = e.lstrip("\n").split("\n", 1)[0].lower()
    if first == "dn: cn=config":
        # listen on loopback only (default is all interfaces)
        e = e.rstrip("\n") + "\nnsslapd-listenhost: 127.0.0.1"
    elif first == "dn: cn=retro changelog plugin,cn=plugins,cn=config":
        e = re.sub(r"(?im)^nsslapd-pluginenabled: off$", "nsslapd-pluginenabled: on", e)
        # copy the target entry's stable ids into every changelog entry
        e = e.rstrip("\n") + ("\nnsslapd-attribute: nsuniqueid:targetUniqueId"
                              "\nnsslapd-attribute: entryuuid:targetEntryUUID"
                              "\nnsslapd-changelogmaxage: 7d")
    elif first == "dn: cn=content synchronization,cn=plugins,cn=config":
        e = re.sub(r"(?im)^nsslapd-pluginenabled: off$", "nsslapd-pluginenabled: on", e)
    out.append(e)
open(path, "w").write("\n\n".join(out))
PY
  grep -q "nsslapd-listenhost: 127.0.0.1" "$DIR/share/dirsrv/data/template-dse.ldif" ||
    { echo "template patch failed" >&2; exit 1; }

  cat > "$DIR/ds.inf" <<EOF
[general]
config_version = 2
full_machine_name = localhost
strict_host_checking = False
selinux = False
systemd = False
start = False

[slapd]
instance_name = $INSTANCE
user = $(id -un)
group = $(id -gn)
port = $PORT
secure_port = $SECURE_PORT
self_sign_cert = False
root_dn = cn=Directory Manager
root_password = $DM_PW

[backend-userroot]
suffix = $SUFFIX
create_suffix_entry = True
sample_entries = no
EOF
  chmod 600 "$DIR/ds.inf"
  # /usr/sbin/dscreate has #!/usr/bin/python3; call it through that interpreter explicitly so a
  # pyenv/virtualenv python3 earlier in PATH (no python3-lib389 there) does not matter.
  if ! PREFIX="$DIR" /usr/bin/python3 /usr/sbin/dscreate -v from-file "$DIR/ds.inf" \
        > "$DIR/dscreate.log" 2>&1; then
    tail -40 "$DIR/dscreate.log" >&2; exit 1
  fi
  T1=$(date +%s.%N)
  CREATE_SECONDS=$(awk "BEGIN{printf \"%.2f\", $T1-$T0}")
  NEW_INSTANCE=1
fi

PORT=$(awk -F': ' '/^nsslapd-port:/{print $2; exit}' "$CONF/dse.ldif")
LDAP_URL="ldap://127.0.0.1:$PORT"
LDAPI_URL="ldapi://$(printf '%s' "$SOCK" | sed 's|/|%2F|g')"

# --- run ns-slapd in the foreground as a background job -------------------------------------
T2=$(date +%s.%N)
mkdir -p "$DIR/run/dirsrv" "$DIR/run/lock/dirsrv/slapd-$INSTANCE"
nohup "$NS_SLAPD" -D "$CONF" -i "$PIDFILE" -d "$DEBUG_LEVEL" > "$DIR/ns-slapd.out" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$DIR/ds.pid"
for _ in $(seq 1 600); do
  if /usr/bin/ldapsearch -x -LLL -H "$LDAP_URL" -b "" -s base namingContexts >/dev/null 2>&1; then
    READY=1; break
  fi
  alive "$PID" || { echo "ns-slapd exited; errors log:" >&2; tail -30 "$LOGDIR/errors" >&2; exit 1; }
  sleep 0.1
done
[[ -n ${READY:-} ]] || { echo "ns-slapd not ready after 60 s" >&2; kill "$PID"; exit 1; }
T3=$(date +%s.%N)

# The clear text of password changes in the Retro Changelog, for password sync tests. It costs
# exposure: anyone who can read cn=changelog reads every new password (README, "Password sync").
/usr/bin/ldapmodify -x -H "$LDAP_URL" -D "cn=Directory Manager" -w "$DM_PW" > /dev/null <<EOF
dn: cn=config
changetype: modify
replace: nsslapd-unhashed-pw-switch
nsslapd-unhashed-pw-switch: $UNHASHED_PW
EOF

if [[ -n ${NEW_INSTANCE:-} && -n $SEED_LDIF ]]; then
  /usr/bin/ldapadd -x -H "$LDAP_URL" -D "cn=Directory Manager" -w "$DM_PW" -f "$SEED_LDIF" > /dev/null
fi

cat > "$DIR/env" <<EOF
LDAP_URL='$LDAP_URL'
LDAPI_URL='$LDAPI_URL'
LDAP_BASE='$SUFFIX'
LDAP_BIND_DN='cn=Directory Manager'
LDAP_BIND_PW='$DM_PW'
LDAP_CHANGELOG_BASE='cn=changelog'
DS_PID='$PID'
DS_INSTANCE='$INSTANCE'
DS_LOG_DIR='$LOGDIR'
DATA_DIR='$DIR'
CREATE_SECONDS='$CREATE_SECONDS'
STARTUP_SECONDS='$(awk "BEGIN{printf \"%.2f\", $T3-$T2}")'
EOF
cat "$DIR/env"
