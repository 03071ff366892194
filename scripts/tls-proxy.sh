#!/usr/bin/env bash
# Start or stop a tansu broker reachable only through TLS (stunnel in front of
# a plain listener), to test the client's SSL settings (Event Hubs speaks
# Kafka over TLS on port 9093).
#
#   scripts/tls-proxy.sh start RUN_DIR [STORAGE [TANSU_FLAG...]]
#       prints 127.0.0.1:PORT (the TLS port) once a TLS handshake succeeds;
#       RUN_DIR/ca.pem is the CA to give the client (ssl.ca.location).
#   scripts/tls-proxy.sh stop RUN_DIR
#
# tansu listens on a plain loopback port but advertises the TLS port, so a
# client that bootstraps through TLS comes back through TLS for every broker
# connection. tansu 0.6's own --cert/--key cannot be used (they are declared
# as mutually exclusive in its CLI). STORAGE is as in tansu.sh (memory://tansu/
# by default, "sqlite" for RUN_DIR/tansu.db); further arguments go to
# `tansu broker` (for example --authentication, for SASL_SSL with SCRAM).
# SCRAM users live only in sqlite storage (the memory engine forgets them), and
# with --authentication every request needs a logged-in user, so create the
# first user on a broker started without it (AlterUserScramCredentials), then
# restart on the same RUN_DIR/tansu.db with: start RUN_DIR sqlite --authentication
#
# Files in RUN_DIR: ca.pem ca.key server.pem server.key (self-signed CA and a
# server certificate for IP:127.0.0.1 and DNS:localhost), stunnel.conf,
# stunnel.log, stunnel.pid, tansu.log, tansu.pid, bootstrap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: tls-proxy.sh start|stop RUN_DIR [STORAGE [TANSU_FLAG...]]"
cmd="${1:?$usage}"
run="${2:?$usage}"
mkdir -p "$run"
run="$(cd "$run" && pwd)"

stop_pid() { # stop_pid FILE: end the process whose id FILE holds, then remove FILE
  if [ -f "$1" ]; then
    kill "$(cat "$1")" 2>/dev/null || true
    rm -f "$1"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_stunnel() {
  command -v stunnel >/dev/null 2>&1 && return 0
  echo "stunnel not found; installing the Debian package stunnel4" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q stunnel4 >&2 \
    || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
         $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q stunnel4 >&2; }
  command -v stunnel >/dev/null 2>&1 || { echo "stunnel is still missing" >&2; exit 1; }
}

make_certs() { # a CA and a server certificate signed by it, no prompts
  local d="$run"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.pem" -days 7 -subj "/CN=kafkalake test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -CAcreateserial -out "$d/server.pem" -days 7 -extfile "$d/server.ext" 2>/dev/null
  rm -f "$d/server.csr" "$d/server.ext" "$d/ca.srl"
  chmod 600 "$d/ca.key" "$d/server.key"
}

case "$cmd" in
  start)
    storage="${3:-memory://tansu/}"
    [ "$storage" = "sqlite" ] && storage="sqlite://tansu.db"
    extra=("${@:4}")
    ensure_stunnel
    bin="${KAFKALAKE_TANSU:-$("$here/install-tansu.sh")}"
    make_certs
    plain="$(free_port)"
    tls="$(free_port)"
    while [ "$tls" = "$plain" ]; do tls="$(free_port)"; done

    # sqlite:// paths are relative to the working directory: the run directory.
    (cd "$run" && exec "$bin" broker --listener-url "tcp://127.0.0.1:$plain" \
      --advertised-listener-url "tcp://127.0.0.1:$tls" \
      --storage-engine "$storage" "${extra[@]}" >"$run/tansu.log" 2>&1) &
    echo $! >"$run/tansu.pid"

    cat >"$run/stunnel.conf" <<EOF
foreground = yes
pid = $run/stunnel.pid
debug = notice
[kafka]
accept = 127.0.0.1:$tls
connect = 127.0.0.1:$plain
cert = $run/server.pem
key = $run/server.key
EOF
    stunnel "$run/stunnel.conf" >"$run/stunnel.log" 2>&1 &
    stunnel_pid=$!
    echo "$stunnel_pid" >"$run/stunnel.pid"
    echo "127.0.0.1:$tls" >"$run/bootstrap"

    # Ready when tansu accepts on the plain port and a TLS handshake with the
    # generated CA succeeds on the TLS port (10 s deadline).
    deadline=$((SECONDS + 10))
    while :; do
      if python3 - "$plain" "$tls" "$run/ca.pem" 2>/dev/null <<'EOF'
import socket, ssl, sys
plain, tls, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socket.create_connection(("127.0.0.1", plain), 0.2).close()
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("127.0.0.1", tls), 0.5) as s:
    ctx.wrap_socket(s, server_hostname="127.0.0.1").close()
EOF
      then
        echo "127.0.0.1:$tls"
        exit 0
      fi
      for p in tansu stunnel; do
        if ! kill -0 "$(cat "$run/$p.pid")" 2>/dev/null; then
          echo "$p exited during start-up; its log:" >&2
          cat "$run/$p.log" >&2
          "$0" stop "$run"
          exit 1
        fi
      done
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "no TLS handshake on port $tls within 10 s; logs: $run/tansu.log $run/stunnel.log" >&2
        "$0" stop "$run"
        exit 1
      fi
      sleep 0.05
    done
    ;;
  stop)
    stop_pid "$run/stunnel.pid"
    stop_pid "$run/tansu.pid"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
