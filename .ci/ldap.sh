# .ci/ldap.sh — start the real LDAP test servers for this shell. Source it:
#
#     source .ci/ldap.sh          # from .ci/test.sh, or by hand from the repository
#     SCIMSYNC_REQUIRE_SERVERS=1 go test -race ./engine/source/... ./engine/state/
#
# It installs what the servers need when missing (Debian slapd, ldap-utils, 389-ds-base, as
# root, with a temporary /usr/sbin/policy-rc.d that forbids package scripts to start system
# services, so no slapd or dirsrv of the system starts on port 389), starts
# testdata/servers/start-openldap.sh (slapd with syncprov + accesslog) and
# testdata/servers/start-389ds.sh (389-ds with the Retro Changelog and Content Sync) in new
# temporary directories, both on 127.0.0.1 and seeded with testdata/ldap/base.ldif, exports
# what they print under distinct names, and stops both servers and removes the directories
# when the shell exits (an EXIT trap, run after any EXIT trap already set). It changes no
# shell option. On failure it returns non-zero, so a `set -e` caller stops there.
#
# Exported:
#   OPENLDAP_URL OPENLDAP_LDAPI_URL OPENLDAP_BASE OPENLDAP_BIND_DN OPENLDAP_BIND_PW
#   OPENLDAP_ACCESSLOG_BASE OPENLDAP_PID OPENLDAP_DATA_DIR OPENLDAP_STARTUP_SECONDS
#   DS389_URL DS389_LDAPI_URL DS389_BASE DS389_BIND_DN DS389_BIND_PW DS389_CHANGELOG_BASE
#   DS389_PID DS389_DATA_DIR DS389_LOG_DIR DS389_CREATE_SECONDS DS389_STARTUP_SECONDS
# Stop them earlier with: scimsync_ldap_stop

scimsync_ldap_stop() {
  if [[ -n ${_SCIMSYNC_LDAP_ROOT:-} ]]; then
    if [[ -n ${OPENLDAP_DATA_DIR:-} && -d $OPENLDAP_DATA_DIR ]]; then
      "$_SCIMSYNC_LDAP_ROOT/testdata/servers/stop-openldap.sh" "$OPENLDAP_DATA_DIR" --rm >&2 || true
    fi
    if [[ -n ${DS389_DATA_DIR:-} && -d $DS389_DATA_DIR ]]; then
      "$_SCIMSYNC_LDAP_ROOT/testdata/servers/stop-389ds.sh" "$DS389_DATA_DIR" --rm >&2 || true
    fi
  fi
}

# _scimsync_ldap_export PREFIX FILE: export FILE's KEY='VALUE' lines as PREFIX_KEY, without
# eval (values never contain a quote). LDAP_URL -> PREFIX_URL, DS_PID -> PREFIX_PID, ...
_scimsync_ldap_export() {
  local prefix=$1 file=$2 line name value
  while IFS= read -r line; do
    name=${line%%=*}
    value=${line#*=}
    value=${value#\'}
    value=${value%\'}
    [[ $name =~ ^[A-Z_]+$ ]] || continue
    name=${name#LDAP_}
    name=${name#DS_}
    if [[ $name == SLAPD_PID ]]; then name=PID; fi
    export "${prefix}_${name}=$value"
  done <"$file"
}

_scimsync_ldap_start() {
  local root dir1 dir2 missing=() bin pkg prev guard=
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  _SCIMSYNC_LDAP_ROOT=$root

  for bin in /usr/sbin/slapd:slapd /usr/bin/ldapsearch:ldap-utils /usr/sbin/ns-slapd:389-ds-base \
             /usr/sbin/dscreate:389-ds-base; do
    [[ -x ${bin%%:*} ]] || missing+=("${bin#*:}")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
      echo ".ci/ldap.sh: missing ${missing[*]}; as root: apt-get install -y slapd ldap-utils 389-ds-base" >&2
      return 1
    fi
    echo ".ci/ldap.sh: installing slapd ldap-utils 389-ds-base" >&2
    # Package scripts must not start the system's slapd or dirsrv (port 389, /etc/ldap):
    # invoke-rc.d asks policy-rc.d, and exit status 101 means "action forbidden".
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
    fi
    local ok=1
    if ! { apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slapd ldap-utils 389-ds-base; } >&2; then
      ok=
    fi
    if [[ -n $guard ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ -n $ok ]] || { echo ".ci/ldap.sh: installing the LDAP servers failed" >&2; return 1; }
  fi

  dir1=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-openldap.XXXXXX") || return 1
  if ! "$root/testdata/servers/start-openldap.sh" "$dir1" >/dev/null; then
    echo ".ci/ldap.sh: slapd did not start (log: $dir1/slapd.log)" >&2
    return 1
  fi
  _scimsync_ldap_export OPENLDAP "$dir1/env"

  # Chain with an EXIT trap already set: ours runs first, then theirs. Set it now, so that
  # slapd is stopped even if 389-ds fails to start.
  prev=$(trap -p EXIT)
  if [[ -n $prev ]]; then
    eval "set -- $prev" # trap -- 'command' EXIT
    trap -- "scimsync_ldap_stop; $3" EXIT
  else
    trap -- scimsync_ldap_stop EXIT
  fi

  # 389-ds needs short paths for its unix socket; mktemp under /tmp keeps them short.
  dir2=$(mktemp -d "/tmp/scimsync-389ds.XXXXXX") || return 1
  if ! "$root/testdata/servers/start-389ds.sh" "$dir2" >/dev/null; then
    echo ".ci/ldap.sh: 389-ds did not start (logs: $dir2/dscreate.log, $dir2/var/log/dirsrv)" >&2
    export DS389_DATA_DIR=$dir2
    return 1
  fi
  _scimsync_ldap_export DS389 "$dir2/env"
  echo ".ci/ldap.sh: slapd at $OPENLDAP_URL (pid $OPENLDAP_PID, started in ${OPENLDAP_STARTUP_SECONDS}s);" \
    "389-ds at $DS389_URL (pid $DS389_PID, created in ${DS389_CREATE_SECONDS}s, started in ${DS389_STARTUP_SECONDS}s)" >&2
}

_scimsync_ldap_start
