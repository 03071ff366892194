#!/usr/bin/env bash
# Start or stop Azurite's blob service (Azure Storage emulator) on a free
# loopback port.
#
#   scripts/azurite.sh start RUN_DIR   prints the blob endpoint once it accepts connections:
#                                      http://127.0.0.1:PORT/devstoreaccount1
#   scripts/azurite.sh stop RUN_DIR
#
# Blobs live in RUN_DIR/data (gone with RUN_DIR); the log is RUN_DIR/azurite.log,
# the pid RUN_DIR/azurite.pid and the endpoint RUN_DIR/endpoint. The account is
# Azurite's well-known devstoreaccount1 with its published key. The executable
# comes from scripts/install-azurite.sh (npm, cached); KAFKALAKE_AZURITE names
# another azurite-blob to use instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: azurite.sh start|stop RUN_DIR"
cmd="${1:?$usage}"
run="${2:?$usage}"

case "$cmd" in
  start)
    mkdir -p "$run/data"
    run="$(cd "$run" && pwd)"   # absolute: azurite gets --location under it
    bin="${KAFKALAKE_AZURITE:-$("$here/install-azurite.sh")}"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    endpoint="http://127.0.0.1:$port/devstoreaccount1"
    # --skipApiVersionCheck: the Rust SDKs send x-ms-version headers newer than
    # the emulator may know; --loose: ignore headers it does not implement.
    "$bin" --disableTelemetry --skipApiVersionCheck --loose --silent \
      --blobHost 127.0.0.1 --blobPort "$port" --location "$run/data" \
      >"$run/azurite.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$run/azurite.pid"
    echo "$endpoint" >"$run/endpoint"
    # Ready when the port accepts connections (about a second: node starts up).
    deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null; then
        echo "$endpoint"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "azurite exited during start-up; its log:" >&2
        cat "$run/azurite.log" >&2
        rm -f "$run/azurite.pid" "$run/endpoint"
        exit 1
      fi
      sleep 0.1
    done
    echo "azurite did not listen on port $port within 30 s; its log is $run/azurite.log" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$run/azurite.pid" "$run/endpoint"
    exit 1
    ;;
  stop)
    if [ -f "$run/azurite.pid" ]; then
      pid="$(cat "$run/azurite.pid")"
      if kill "$pid" 2>/dev/null; then
        # Wait (bounded) so the port and the data directory are free on return.
        for _ in $(seq 1 50); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
      fi
      rm -f "$run/azurite.pid" "$run/endpoint"
    fi
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
