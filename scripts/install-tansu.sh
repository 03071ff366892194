#!/usr/bin/env bash
# Build the tansu broker (Apache-2.0, Kafka wire protocol) from crates.io once
# and keep it in a cache directory, so CI runs and later sessions reuse it.
# Prints the path of the binary on stdout.
set -euo pipefail
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
CACHE="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}"
ROOT="$CACHE/tansu-$TANSU_VERSION"
BIN="$ROOT/bin/tansu"
if [ ! -x "$BIN" ]; then
  echo "building tansu $TANSU_VERSION into $ROOT (about 10 minutes the first time)" >&2
  mkdir -p "$ROOT"
  # tansu's own build target stays out of the project's target directory.
  CARGO_TARGET_DIR="$CACHE/tansu-target" \
    cargo install tansu --locked --version "$TANSU_VERSION" \
      --features dynostore,libsql --root "$ROOT" >&2
fi
echo "$BIN"
