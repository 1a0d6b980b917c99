# .ci/samba.sh — start the Samba Active Directory domain controller the DirSync tests use, for
# this shell. Source it:
#
#     source .ci/samba.sh         # from .ci/test.sh, or by hand from the repository (as root)
#     SCIMSYNC_REQUIRE_SERVERS=1 go test -race -run 'AD|DirSync' ./engine/... ./cmd/...
#
# Samba's LDAP server always binds port 389 (it has no port setting), so it needs root and runs
# once per machine (network namespace). Not root: it starts nothing, says so, and returns 0;
# the AD tests then skip with the same reason (ldaptest.AD), even with
# SCIMSYNC_REQUIRE_SERVERS=1. As root it installs what the DC needs when missing (Debian samba,
# samba-ad-dc, samba-ad-provision, samba-dsdb-modules, samba-vfs-modules, winbind, ldap-utils,
# with a temporary /usr/sbin/policy-rc.d that forbids package scripts to start system services,
# so no smbd, samba-ad-dc or winbind of the system starts), provisions a fresh domain
# (EXAMPLE.COM, base DC=example,DC=com) in a new temporary directory with
# testdata/servers/start-samba-ad.sh, on 127.0.0.1 only, exports what it prints under
# SAMBA_AD_* names, and stops the DC and removes the directory when the shell exits (an EXIT
# trap, run after any EXIT trap already set). When port 389 is already taken it fails, naming
# the process that holds it. It changes no shell option. On failure it returns non-zero, so a
# `set -e` caller stops there.
#
# Exported (as root):
#   SAMBA_AD_URL SAMBA_AD_BASE SAMBA_AD_BIND_DN SAMBA_AD_BIND_PW SAMBA_AD_PID SAMBA_AD_DATA_DIR
#   SAMBA_AD_PROVISION_SECONDS SAMBA_AD_STARTUP_SECONDS SAMBA_AD_INSTALL_SECONDS
# Stop it earlier with: scimsync_samba_stop

scimsync_samba_stop() {
  if [[ -n ${_SCIMSYNC_SAMBA_ROOT:-} && -n ${SAMBA_AD_DATA_DIR:-} && -d $SAMBA_AD_DATA_DIR ]]; then
    "$_SCIMSYNC_SAMBA_ROOT/testdata/servers/stop-samba-ad.sh" "$SAMBA_AD_DATA_DIR" --rm >&2 || true
  fi
}

_scimsync_samba_start() {
  local root dir line name value missing=() prev guard= t0 t1 ok
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  _SCIMSYNC_SAMBA_ROOT=$root

  if [[ $(id -u) != 0 ]]; then
    echo ".ci/samba.sh: not root, so no Samba AD (it always binds port 389); the AD tests will skip" >&2
    return 0
  fi

  local pkg
  for pkg in samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind ldap-utils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  SAMBA_AD_INSTALL_SECONDS=0
  if ((${#missing[@]})); then
    echo ".ci/samba.sh: installing samba samba-ad-dc samba-ad-provision (missing ${missing[*]})" >&2
    # Package scripts must not start the system's samba, smbd or winbind: invoke-rc.d asks
    # policy-rc.d, and exit status 101 means "action forbidden".
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
    fi
    t0=$(date +%s.%N)
    ok=1
    if ! { apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldap-utils; } >&2; then
      ok=
    fi
    if [[ -n $guard ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ -n $ok ]] || { echo ".ci/samba.sh: installing Samba failed" >&2; return 1; }
    t1=$(date +%s.%N)
    SAMBA_AD_INSTALL_SECONDS=$(awk "BEGIN{printf \"%.2f\", $t1-$t0}")
  fi
  export SAMBA_AD_INSTALL_SECONDS

  dir=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-samba-ad.XXXXXX") || return 1
  if ! "$root/testdata/servers/start-samba-ad.sh" "$dir" >/dev/null; then
    if [[ -e $dir/provision.log ]]; then
      echo ".ci/samba.sh: Samba AD did not start (logs: $dir/provision.log, $dir/samba.log)" >&2
    else
      echo ".ci/samba.sh: Samba AD did not start (the reason is above)" >&2
      rm -rf -- "$dir"
    fi
    return 1
  fi
  # Export KEY='VALUE' lines without eval (values never contain a quote):
  # LDAP_URL -> SAMBA_AD_URL, SAMBA_PID -> SAMBA_AD_PID, DATA_DIR -> SAMBA_AD_DATA_DIR ...
  while IFS= read -r line; do
    name=${line%%=*}
    value=${line#*=}
    value=${value#\'}
    value=${value%\'}
    [[ $name =~ ^[A-Z_]+$ ]] || continue
    name=${name#LDAP_}
    name=${name#SAMBA_}
    export "SAMBA_AD_${name}=$value"
  done <"$dir/env"

  # Chain with an EXIT trap already set: ours runs first, then theirs.
  prev=$(trap -p EXIT)
  if [[ -n $prev ]]; then
    eval "set -- $prev" # trap -- 'command' EXIT
    trap -- "scimsync_samba_stop; $3" EXIT
  else
    trap -- scimsync_samba_stop EXIT
  fi
  echo ".ci/samba.sh: Samba AD at $SAMBA_AD_URL (pid $SAMBA_AD_PID; installed in ${SAMBA_AD_INSTALL_SECONDS}s," \
    "provisioned in ${SAMBA_AD_PROVISION_SECONDS}s, started in ${SAMBA_AD_STARTUP_SECONDS}s)" >&2
}

_scimsync_samba_start
