#!/usr/bin/env bash
# Start or stop a tansu broker (Kafka wire protocol) on a free loopback port.
#
#   scripts/tansu.sh start RUN_DIR [STORAGE]   prints host:port once it accepts connections
#   scripts/tansu.sh stop RUN_DIR
#
# TANSU_PORT=N starts it on that port (a restart on the port it had, with
# the same RUN_DIR and sqlite storage, brings the same broker back).
#
# STORAGE defaults to memory://tansu/ (fast; gone at stop); "sqlite" keeps
# records in RUN_DIR/tansu.db, one row per record: slower, but it survives a
# restart and serves a fetch that starts inside a record batch (the memory
# engine only returns batches that start at or after the fetch offset). The binary comes from
# scripts/install-tansu.sh (built once from crates.io, then cached).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:?usage: tansu.sh start|stop RUN_DIR [STORAGE]}"
run="${2:?usage: tansu.sh start|stop RUN_DIR [STORAGE]}"
mkdir -p "$run"

case "$cmd" in
  start)
    storage="${3:-memory://tansu/}"
    [ "$storage" = "sqlite" ] && storage="sqlite://tansu.db"
    bin="${KAFKALAKE_TANSU:-$("$here/install-tansu.sh")}"
    port="${TANSU_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    url="tcp://127.0.0.1:$port"
    # sqlite:// paths are relative to the working directory: the run directory.
    (cd "$run" && exec "$bin" broker --listener-url "$url" --advertised-listener-url "$url" \
      --storage-engine "$storage" >"$run/tansu.log" 2>&1) &
    echo $! >"$run/tansu.pid"
    echo "127.0.0.1:$port" >"$run/bootstrap"
    # Ready when the port accepts connections (tansu answers within milliseconds).
    for _ in $(seq 1 200); do
      if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        echo "127.0.0.1:$port"
        exit 0
      fi
      if ! kill -0 "$(cat "$run/tansu.pid")" 2>/dev/null; then
        echo "tansu exited during start-up; its log:" >&2
        cat "$run/tansu.log" >&2
        exit 1
      fi
      sleep 0.05
    done
    echo "tansu did not listen on port $port within 10 s; its log is $run/tansu.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$run/tansu.pid" ]; then
      kill "$(cat "$run/tansu.pid")" 2>/dev/null || true
      rm -f "$run/tansu.pid"
    fi
    ;;
  *)
    echo "usage: tansu.sh start|stop RUN_DIR [STORAGE]" >&2
    exit 2
    ;;
esac
