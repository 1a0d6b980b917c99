#!/usr/bin/env bash
# start-openldap.sh — start a throwaway OpenLDAP slapd on 127.0.0.1 for tests.
#
# Usage:  testdata/servers/start-openldap.sh [DATA_DIR]
#   DATA_DIR  where config, databases, socket, log and PID go.
#             Default: a fresh mktemp dir under ${TMPDIR:-/tmp}. If DATA_DIR already holds a
#             slapd.d made by this script, slapd is just started again on the same port with the
#             same data (restart/resume tests).
# Env (all optional):
#   OPENLDAP_PORT      TCP port on 127.0.0.1 (default 3890; next free port is used if taken
#                      unless OPENLDAP_PORT_STRICT=1)
#   OPENLDAP_SUFFIX    default dc=example,dc=com
#   OPENLDAP_ADMIN_PW  password of cn=admin,<suffix> (default: secret)
#   OPENLDAP_DEBUG     slapd -d level (default 0 = quiet; "stats" logs every op to slapd.log)
#   OPENLDAP_SEED_LDIF LDIF slapadd'ed into the main DB at creation, after the suffix entry
#                      (default: testdata/ldap/base.ldif, which assumes dc=example,dc=com;
#                      set it to /dev/null for an empty tree)
#   OPENLDAP_SESSIONLOG accesslog (default) | memory — where syncprov keeps its session log
#
# What it builds (cn=config, loaded offline with slapadd -n0, no systemd, no /etc/ldap changes):
#   * modules back_mdb, syncprov, accesslog (Debian ships them as modules in /usr/lib/ldap)
#   * schemas core, cosine, nis, inetorgperson
#   * database {1}mdb  cn=accesslog      — the accesslog DB (reqStart/reqType/reqDN/reqMod/reqOld...)
#                                           + syncprov (nopresent, reloadhint) = delta-syncrepl ready
#   * database {2}mdb  dc=example,dc=com — main DB, rootdn cn=admin,<suffix>
#         overlay {0}syncprov   -> RFC 4533 refreshOnly / refreshAndPersist for clients
#                                 (checkpoint 100 ops/1 min; session log = the accesslog DB
#                                 (olcSpSessionlogSource), so cookie resumes still get deletes as
#                                 syncIdSet after a slapd restart; OPENLDAP_SESSIONLOG=memory uses
#                                 the in-memory olcSpSessionlog 10000 instead)
#         overlay {1}accesslog  -> every successful write logged under cn=accesslog,
#                                 old values of modified/deleted entries kept (logold (objectClass=*))
#   * cn=config is writable by root over the ldapi socket (SASL EXTERNAL) and by
#     cn=admin,cn=config with the same password.
#   * the suffix entry, then OPENLDAP_SEED_LDIF (ou=People, ou=Groups, a few users, a group)
#
# On success prints KEY='VALUE' lines (also written to DATA_DIR/env, sourceable):
#   LDAP_URL LDAP_BASE LDAP_BIND_DN LDAP_BIND_PW LDAP_ACCESSLOG_BASE LDAPI_URL SLAPD_PID DATA_DIR
#   STARTUP_SECONDS (creation + start until the root DSE answers)
# Stop with: stop-openldap.sh DATA_DIR   (kills the PID in DATA_DIR/slapd.pid; never by name)
# Adapted from the team harness; owned by this repository.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEED_LDIF=${OPENLDAP_SEED_LDIF-$HERE/../ldap/base.ldif}

SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
SCHEMA_DIR=${SCHEMA_DIR:-/etc/ldap/schema}
MODULE_DIR=${MODULE_DIR:-/usr/lib/ldap}
SUFFIX=${OPENLDAP_SUFFIX:-dc=example,dc=com}
ADMIN_DN="cn=admin,${SUFFIX}"
ADMIN_PW=${OPENLDAP_ADMIN_PW:-secret}
DEBUG_LEVEL=${OPENLDAP_DEBUG:-0}

for bin in "$SLAPD" "$SLAPADD" /usr/bin/ldapsearch /usr/bin/ldapadd; do
  [[ -x $bin ]] || { echo "missing $bin: apt-get install -y slapd ldap-utils" >&2; exit 1; }
done
[[ -f $MODULE_DIR/syncprov.la && -f $MODULE_DIR/accesslog.la && -f $MODULE_DIR/back_mdb.la ]] ||
  { echo "slapd modules not found in $MODULE_DIR" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }

# --- data directory -------------------------------------------------------------------------
DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/openldap.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
REUSE=
if [[ -e $DIR/slapd.d ]]; then
  [[ -f $DIR/port ]] || { echo "$DIR holds a slapd.d not made by this script" >&2; exit 1; }
  if [[ -f $DIR/slapd.pid ]] && alive "$(cat "$DIR/slapd.pid")"; then
    echo "slapd already running from $DIR (pid $(cat "$DIR/slapd.pid"))" >&2; exit 1
  fi
  REUSE=1
fi

# --- pick a free loopback port (a restarted instance keeps its port) ------------------------
if [[ -n $REUSE ]]; then
  PORT=$(cat "$DIR/port")
  if port_in_use "$PORT"; then echo "port $PORT (from $DIR/port) is in use" >&2; exit 1; fi
else
  PORT=${OPENLDAP_PORT:-3890}
  if port_in_use "$PORT"; then
    if [[ ${OPENLDAP_PORT_STRICT:-0} == 1 ]]; then echo "port $PORT in use" >&2; exit 1; fi
    for _ in $(seq 1 200); do PORT=$((PORT + 1)); port_in_use "$PORT" || break; done
  fi
  mkdir -p "$DIR/slapd.d" "$DIR/db-main" "$DIR/db-accesslog"
  echo "$PORT" > "$DIR/port"
fi

# ldapi:// socket path must be URL-encoded and < 108 bytes
SOCK="$DIR/ldapi"
if (( ${#SOCK} > 100 )); then SOCK=$(mktemp -u /tmp/ldapi.XXXXXX); fi
LDAPI_URL="ldapi://$(printf '%s' "$SOCK" | sed 's|/|%2F|g')"
LDAP_URL="ldap://127.0.0.1:${PORT}"

# SSHA hash so the cleartext never lands in the config
PW_HASH=$(/usr/sbin/slappasswd -s "$ADMIN_PW")
# first RDN value of the suffix (dc=example,dc=com -> example) for the base entry
DC_VALUE=$(printf '%s' "$SUFFIX" | sed -E 's/^dc=([^,]+).*/\1/')

if [[ ${OPENLDAP_SESSIONLOG:-accesslog} == memory ]]; then
  SESSIONLOG_LINE="olcSpSessionlog: 10000"
else
  SESSIONLOG_LINE="olcSpSessionlogSource: cn=accesslog"
fi

T0=$(date +%s.%N)
if [[ -z $REUSE ]]; then
# --- cn=config ------------------------------------------------------------------------------
cat > "$DIR/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $DIR/slapd.pid
olcArgsFile: $DIR/slapd.args
olcLogLevel: none
olcSizeLimit: unlimited
olcTimeLimit: unlimited

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODULE_DIR
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}syncprov
olcModuleLoad: {2}accesslog

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMA_DIR/core.ldif

include: file://$SCHEMA_DIR/cosine.ldif

include: file://$SCHEMA_DIR/nis.ldif

include: file://$SCHEMA_DIR/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to * by dn.exact=gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth manage by * break
olcAccess: {1}to dn.base="" by * read
olcAccess: {2}to dn.base="cn=Subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: $PW_HASH
olcAccess: {0}to * by dn.exact=gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: cn=accesslog
olcDbDirectory: $DIR/db-accesslog
olcDbMaxSize: 1073741824
olcRootDN: $ADMIN_DN
olcDbIndex: default eq
olcDbIndex: entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN
olcAccess: {0}to * by dn.exact="$ADMIN_DN" read by * none
olcLimits: {0}dn.exact="$ADMIN_DN" size=unlimited time=unlimited

dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
olcSpNoPresent: TRUE
olcSpReloadHint: TRUE

dn: olcDatabase={2}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {2}mdb
olcSuffix: $SUFFIX
olcDbDirectory: $DIR/db-main
olcDbMaxSize: 4294967296
olcRootDN: $ADMIN_DN
olcRootPW: $PW_HASH
olcDbIndex: objectClass eq
olcDbIndex: entryCSN eq
olcDbIndex: entryUUID eq
olcDbIndex: uid,cn,mail,member,uniqueMember eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by dn.exact="$ADMIN_DN" write by * read
olcLimits: {0}dn.exact="$ADMIN_DN" size=unlimited time=unlimited

dn: olcOverlay={0}syncprov,olcDatabase={2}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
olcSpCheckpoint: 100 1
$SESSIONLOG_LINE

dn: olcOverlay={1}accesslog,olcDatabase={2}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcAccessLogConfig
olcOverlay: {1}accesslog
olcAccessLogDB: cn=accesslog
olcAccessLogOps: writes
olcAccessLogSuccess: TRUE
olcAccessLogOld: (objectClass=*)
olcAccessLogPurge: 07+00:00 01+00:00
EOF

cat > "$DIR/base.ldif" <<EOF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
dc: $DC_VALUE
o: $DC_VALUE
EOF

"$SLAPADD" -n 0 -F "$DIR/slapd.d" -l "$DIR/config.ldif" > "$DIR/slapadd.log" 2>&1 ||
  { cat "$DIR/slapadd.log" >&2; exit 1; }
# -n 2 = the main DB (config is 0, accesslog 1); slapadd bypasses overlays, so the base
# entries do NOT show up in cn=accesslog (they do get entryUUID/entryCSN).
"$SLAPADD" -q -n 2 -F "$DIR/slapd.d" -l "$DIR/base.ldif" >> "$DIR/slapadd.log" 2>&1 ||
  { cat "$DIR/slapadd.log" >&2; exit 1; }
if [[ -n $SEED_LDIF ]]; then
  "$SLAPADD" -q -n 2 -F "$DIR/slapd.d" -l "$SEED_LDIF" >> "$DIR/slapadd.log" 2>&1 ||
    { cat "$DIR/slapadd.log" >&2; exit 1; }
fi
fi # end of first-time setup

# -d keeps slapd in the foreground (no fork), so $! is the real slapd PID.
nohup "$SLAPD" -d "$DEBUG_LEVEL" -F "$DIR/slapd.d" -h "$LDAP_URL/ $LDAPI_URL/" \
  >> "$DIR/slapd.log" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$DIR/slapd.pid.launcher"

# --- wait until it answers a root DSE search (max 30 s) -------------------------------------
for _ in $(seq 1 300); do
  if /usr/bin/ldapsearch -x -LLL -H "$LDAP_URL" -b "" -s base namingContexts >/dev/null 2>&1; then
    READY=1; break
  fi
  if ! alive "$PID"; then
    echo "slapd exited during startup; log:" >&2; cat "$DIR/slapd.log" >&2; exit 1
  fi
  sleep 0.1
done
if [[ -z ${READY:-} ]]; then
  echo "slapd not ready after 30 s; log:" >&2; cat "$DIR/slapd.log" >&2; kill "$PID"; exit 1
fi
T1=$(date +%s.%N)
# slapd writes olcPidFile itself; keep our own copy too (same PID because of -d).
echo "$PID" > "$DIR/slapd.pid"

cat > "$DIR/env" <<EOF
LDAP_URL='$LDAP_URL'
LDAPI_URL='$LDAPI_URL'
LDAP_BASE='$SUFFIX'
LDAP_BIND_DN='$ADMIN_DN'
LDAP_BIND_PW='$ADMIN_PW'
LDAP_ACCESSLOG_BASE='cn=accesslog'
SLAPD_PID='$PID'
DATA_DIR='$DIR'
STARTUP_SECONDS='$(awk "BEGIN{printf \"%.2f\", $T1-$T0}")'
EOF
cat "$DIR/env"
