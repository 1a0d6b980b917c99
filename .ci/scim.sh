# .ci/scim.sh — start the real SCIM 2.0 test server for this shell. Source it:
#
#     source .ci/scim.sh          # from .ci/run, or by hand from the repository
#     SCIMSYNC_REQUIRE_SERVERS=1 go test -race ./engine/scim/
#
# It installs what the server needs when missing (Debian nodejs/npm/openssl/curl as root; the
# pinned npm packages with `npm ci`, cached outside the repository by start-scim.sh), starts
# testdata/servers/start-scim.sh in a new temporary directory, exports every SCIM_* variable
# it prints, and stops the server and removes the directory when the shell exits (an EXIT
# trap, run after any EXIT trap already set). It changes no shell option. On failure it
# returns non-zero, so a `set -e` caller stops there.
#
# Exported: SCIM_URL SCIM_HTTPS_URL SCIM_MTLS_URL SCIM_CONTROL_URL SCIM_TOKEN SCIM_BASIC_USER
# SCIM_BASIC_PASSWORD SCIM_OAUTH_TOKEN_URL SCIM_OAUTH_CLIENT_ID SCIM_OAUTH_CLIENT_SECRET
# SCIM_CA_FILE SCIM_CLIENT_CERT_FILE SCIM_CLIENT_KEY_FILE SCIM_PID SCIM_DATA_DIR
# SCIM_STARTUP_SECONDS. Stop it earlier with: scimsync_scim_stop

scimsync_scim_stop() {
  if [[ -n ${SCIM_DATA_DIR:-} && -d $SCIM_DATA_DIR && -n ${_SCIMSYNC_ROOT:-} ]]; then
    "$_SCIMSYNC_ROOT/testdata/servers/stop-scim.sh" "$SCIM_DATA_DIR" --rm >&2 || true
  fi
}

_scimsync_scim_start() {
  local root dir line name value missing=() tool prev
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  _SCIMSYNC_ROOT=$root

  for tool in node npm openssl curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
      echo ".ci/scim.sh: missing ${missing[*]}; install nodejs npm openssl curl" >&2
      return 1
    fi
    echo ".ci/scim.sh: installing nodejs npm openssl curl" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        nodejs npm openssl curl ca-certificates; } >&2 || return 1
  fi

  dir=$(mktemp -d "${TMPDIR:-/tmp}/scimsync-scim.XXXXXX") || return 1
  if ! "$root/testdata/servers/start-scim.sh" "$dir" >/dev/null; then
    echo ".ci/scim.sh: the SCIM test server did not start (log: $dir/scim-server.log)" >&2
    return 1
  fi
  # Export KEY='VALUE' lines without eval (values never contain a quote).
  while IFS= read -r line; do
    name=${line%%=*}
    value=${line#*=}
    value=${value#\'}
    value=${value%\'}
    [[ $name =~ ^SCIM_[A-Z_]+$ ]] && export "$name=$value"
  done <"$dir/env"

  # Chain with an EXIT trap already set: ours runs first, then theirs.
  prev=$(trap -p EXIT)
  if [[ -n $prev ]]; then
    eval "set -- $prev" # trap -- 'command' EXIT
    trap -- "scimsync_scim_stop; $3" EXIT
  else
    trap -- scimsync_scim_stop EXIT
  fi
  echo ".ci/scim.sh: SCIM test server at $SCIM_URL (https $SCIM_HTTPS_URL, mTLS $SCIM_MTLS_URL), pid $SCIM_PID, started in ${SCIM_STARTUP_SECONDS}s" >&2
}

_scimsync_scim_start
