#!/usr/bin/env bash
# start-scim.sh — start the SCIMMY-based SCIM 2.0 test server (scim-server.js) on 127.0.0.1.
#
# Usage:  testdata/servers/start-scim.sh [DATA_DIR]
#         (DATA_DIR holds the pid, log, env file and TLS files; default: a new mktemp dir)
# Stop:   testdata/servers/stop-scim.sh DATA_DIR [--rm]
#
# One node process serves one in-memory store on three 127.0.0.1 listeners:
#   plain HTTP (SCIM_URL), HTTPS (SCIM_HTTPS_URL) and HTTPS requiring a client certificate
#   (SCIM_MTLS_URL). A test CA, the server certificate and a client certificate are generated
#   with openssl into DATA_DIR on first start (kept on restart).
# Auth accepted on every listener: bearer SCIM_TOKEN, HTTP Basic SCIM_BASIC_USER/PASSWORD, and
#   bearer tokens issued by the OAuth2 client-credentials endpoint SCIM_OAUTH_TOKEN_URL.
#
# Env (optional, inputs):
#   SCIM_PORT   first port to try (default 8880; the next free ones are used if taken, unless
#               SCIM_PORT_STRICT=1, which only applies to the HTTP port)
#   SCIM_TOKEN, SCIM_BASIC_USER, SCIM_BASIC_PASSWORD, SCIM_OAUTH_CLIENT_ID,
#   SCIM_OAUTH_CLIENT_SECRET, SCIM_OAUTH_TTL (seconds): credentials (test defaults below)
#   SCIMSYNC_NODE_CACHE  where the pinned npm dependencies are installed (default
#               ${XDG_CACHE_HOME:-$HOME/.cache}/scimsync); never into the repository
#   plus every SCIM_* knob documented at the top of scim-server.js (strictness etc.; SCIM_BULK,
#               SCIM_BULK_MAX_OPERATIONS and SCIM_BULK_MAX_PAYLOAD set what Bulk advertises and takes)
#
# The npm dependencies (package.json + package-lock.json next to this script) are installed with
# `npm ci` on first use into the cache, keyed by the lock file's hash; nothing else is downloaded.
# Prints KEY='VALUE' lines, also written to DATA_DIR/env (ready to `set -a; . DATA_DIR/env`).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in node npm openssl curl sha256sum; do
  command -v "$tool" >/dev/null || { echo "start-scim.sh: $tool not found (apt-get install -y nodejs npm openssl curl)" >&2; exit 1; }
done

alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ -n $st && $st != Z ]]; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/scim.XXXXXX")}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)

# Already running from this DIR: print its env again.
if [[ -f $DIR/scim.pid && -f $DIR/env ]] && alive "$(cat "$DIR/scim.pid")" \
   && grep -q scim-server.js "/proc/$(cat "$DIR/scim.pid")/cmdline" 2>/dev/null; then
  cat "$DIR/env"; exit 0
fi

# ---- npm dependencies, in a cache outside the repository ----------------------------------------
CACHE=${SCIMSYNC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scimsync}
LOCKSUM=$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)
DEPS=$CACHE/scim-server-deps-$LOCKSUM
if [[ ! -f $DEPS/.installed ]]; then
  mkdir -p "$CACHE"
  TMPDEPS=$(mktemp -d "$CACHE/.deps.XXXXXX")
  cp "$HERE/package.json" "$HERE/package-lock.json" "$TMPDEPS/"
  echo "start-scim.sh: installing npm dependencies into $DEPS (once)" >&2
  ( cd "$TMPDEPS" && npm ci --no-audit --no-fund --loglevel=error ) >&2
  touch "$TMPDEPS/.installed"
  # Another start may have won the race: keep whichever got there first.
  mv -T "$TMPDEPS" "$DEPS" 2>/dev/null || rm -rf -- "$TMPDEPS"
fi
# ESM imports resolve next to the script, so run a copy of it beside a node_modules link.
cp "$HERE/scim-server.js" "$DIR/scim-server.js"
ln -sfn "$DEPS/node_modules" "$DIR/node_modules"

# ---- ports ----------------------------------------------------------------------------------------
PORT=${SCIM_PORT:-8880}
if port_in_use "$PORT" && [[ ${SCIM_PORT_STRICT:-0} == 1 ]]; then echo "start-scim.sh: port $PORT in use" >&2; exit 1; fi
next_free() { # next free port >= $1 that is not in the rest of the arguments
  local p=$1; shift
  for _ in $(seq 1 300); do
    if ! port_in_use "$p" && [[ " $* " != *" $p "* ]]; then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  echo "start-scim.sh: no free port near $1" >&2; return 1
}
PORT=$(next_free "$PORT")
HTTPS_PORT=$(next_free $((PORT + 1)) "$PORT")
MTLS_PORT=$(next_free $((HTTPS_PORT + 1)) "$PORT" "$HTTPS_PORT")

# ---- TLS: a test CA, a server certificate for 127.0.0.1/localhost, a client certificate ----------
if [[ ! -f $DIR/client.crt ]]; then
  (
    cd "$DIR"
    ecparam=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ecparam[@]}" -days 7 -subj "/CN=scimsync test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.crt
    openssl req "${ecparam[@]}" -subj "/CN=127.0.0.1" -keyout tls.key -out tls.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile tls.ext -out tls.crt
    openssl req "${ecparam[@]}" -subj "/CN=scimsync-test-client" -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile client.ext -out client.crt
    rm -f tls.csr client.csr tls.ext client.ext
    chmod 600 ca.key tls.key client.key
  ) >"$DIR/openssl.log" 2>&1 || { echo "start-scim.sh: openssl failed:" >&2; cat "$DIR/openssl.log" >&2; exit 1; }
fi

# ---- credentials (test values; the Go tests read them from the env output) -----------------------
TOKEN=${SCIM_TOKEN-scimsync-test-token}
BASIC_USER=${SCIM_BASIC_USER-scimsync}
BASIC_PASSWORD=${SCIM_BASIC_PASSWORD-scimsync-test-password}
CLIENT_ID=${SCIM_OAUTH_CLIENT_ID-scimsync-test-client}
CLIENT_SECRET=${SCIM_OAUTH_CLIENT_SECRET-scimsync-test-client-secret}
BASE=${SCIM_BASE:-/scim/v2}

T0=$(date +%s.%N)
# A free port can be taken between the check and the server's bind (tests
# start servers in parallel): on EADDRINUSE, the next free ports, again.
READY=
for try in 1 2 3 4 5 6 7 8; do
  SCIM_PORT=$PORT SCIM_HTTPS_PORT=$HTTPS_PORT SCIM_MTLS_PORT=$MTLS_PORT SCIM_BASE=$BASE \
  SCIM_TOKEN=$TOKEN SCIM_BASIC_USER=$BASIC_USER SCIM_BASIC_PASSWORD=$BASIC_PASSWORD \
  SCIM_OAUTH_CLIENT_ID=$CLIENT_ID SCIM_OAUTH_CLIENT_SECRET=$CLIENT_SECRET \
  SCIM_TLS_CERT=$DIR/tls.crt SCIM_TLS_KEY=$DIR/tls.key SCIM_TLS_CA=$DIR/ca.crt \
    nohup node "$DIR/scim-server.js" > "$DIR/scim-server.log" 2>&1 < /dev/null &
  PID=$!
  echo "$PID" > "$DIR/scim.pid"
  for _ in $(seq 1 300); do
    # Our own server must answer (its pid), not another one on a port it lost.
    if curl -fs "http://127.0.0.1:$PORT/_control/health" 2>/dev/null | grep -q "\"pid\":$PID[,}]" \
       && curl -fs --cacert "$DIR/ca.crt" "https://127.0.0.1:$HTTPS_PORT/_control/health" 2>/dev/null | grep -q "\"pid\":$PID[,}]"; then
      READY=1; break
    fi
    alive "$PID" || break
    sleep 0.1
  done
  [[ -n $READY ]] && break
  if alive "$PID"; then echo "start-scim.sh: scim-server not ready after 30 s" >&2; kill "$PID"; exit 1; fi
  if [[ $try -lt 8 && ${SCIM_PORT_STRICT:-0} != 1 ]] && grep -q EADDRINUSE "$DIR/scim-server.log"; then
    PORT=$(next_free $((MTLS_PORT + 1)))
    HTTPS_PORT=$(next_free $((PORT + 1)) "$PORT")
    MTLS_PORT=$(next_free $((HTTPS_PORT + 1)) "$PORT" "$HTTPS_PORT")
    continue
  fi
  echo "start-scim.sh: scim-server exited:" >&2; cat "$DIR/scim-server.log" >&2; exit 1
done
[[ -n $READY ]] || { echo "start-scim.sh: scim-server did not start" >&2; exit 1; }
T1=$(date +%s.%N)

cat > "$DIR/env" <<ENV
SCIM_URL='http://127.0.0.1:$PORT$BASE'
SCIM_HTTPS_URL='https://127.0.0.1:$HTTPS_PORT$BASE'
SCIM_MTLS_URL='https://127.0.0.1:$MTLS_PORT$BASE'
SCIM_CONTROL_URL='http://127.0.0.1:$PORT/_control'
SCIM_TOKEN='$TOKEN'
SCIM_BASIC_USER='$BASIC_USER'
SCIM_BASIC_PASSWORD='$BASIC_PASSWORD'
SCIM_OAUTH_TOKEN_URL='http://127.0.0.1:$PORT/oauth/token'
SCIM_OAUTH_CLIENT_ID='$CLIENT_ID'
SCIM_OAUTH_CLIENT_SECRET='$CLIENT_SECRET'
SCIM_CA_FILE='$DIR/ca.crt'
SCIM_CLIENT_CERT_FILE='$DIR/client.crt'
SCIM_CLIENT_KEY_FILE='$DIR/client.key'
SCIM_PID='$PID'
SCIM_DATA_DIR='$DIR'
SCIM_STARTUP_SECONDS='$(awk "BEGIN{printf \"%.2f\", $T1-$T0}")'
ENV
cat "$DIR/env"
