#!/usr/bin/env bash
# Build the peer tools the benchmarks run next to kafkalake, once, into the cache.
#
#   bench/peers.sh                    builds kafka-delta-ingest; prints the binary's path
#
# The source archive comes from ../shared/peers/ (beside the repository; see its
# README.md); KAFKALAKE_PEERS overrides that directory. Everything is built
# under ${KAFKALAKE_CACHE:-~/.cache/kafkalake}/peers/ (its own CARGO_TARGET_DIR,
# not the repository's target), with the archive's own build line:
# `CARGO_PROFILE_RELEASE_LTO=false cargo build --release --features azure`
# (a storage feature is required; about 15 minutes cold on 2 cores). A no-op
# when the binary is already there. Build output goes to
# peers/kafka-delta-ingest.build.log (and to stderr on failure); only the path is
# printed on stdout. Run it under `nice -n 19` on a busy machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers_src="${KAFKALAKE_PEERS:-$here/../../shared/peers}"
cache="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}/peers"
name="kafka-delta-ingest"
archive="$peers_src/kafka-delta-ingest-c6d42de.tar.gz"
src="$cache/$name-c6d42de"
bin="$src/target/release/$name"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if [ ! -f "$archive" ]; then
  echo "peers.sh: $archive not found (set KAFKALAKE_PEERS to the directory holding it)" >&2
  exit 1
fi
mkdir -p "$cache"
if [ ! -f "$src/Cargo.toml" ]; then
  rm -rf "$src.tmp"
  mkdir -p "$src.tmp"
  tar xzf "$archive" -C "$src.tmp"
  rm -rf "$src"
  mv "$src.tmp/$name" "$src"
  rmdir "$src.tmp"
fi
log="$cache/$name.build.log"
echo "peers.sh: building $name (log: $log)" >&2
if ! (cd "$src" && CARGO_TARGET_DIR="$src/target" CARGO_PROFILE_RELEASE_LTO=false \
  cargo build --release --features azure) >"$log" 2>&1; then
  echo "peers.sh: $name did not build; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "$bin"
